"""The home page (the pipeline at a glance) and the System page."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from hrgc_site import pipeline
from hrgc_site import system as system_info
from hrgc_site.roles import operator_required


@require_safe
def home(request):
    return render(request, "home.html", pipeline.overview())


@require_safe
def system(request):
    context = {
        "database": system_info.database_info(),
        "clusters": system_info.cluster_info(),
        "tasks": system_info.task_counts(),
        "torch": system_info.torch_info(),
        "disk": system_info.disk_info(),
        "check_task": request.GET.get("check", ""),
    }
    return render(request, "system.html", context)


@require_POST
@operator_required
def check_workers(request):
    from django_q.tasks import async_task

    task_id = async_task("hrgc_site.tasks.ping", q_options={"task_name": "check-workers"})
    return redirect(reverse("system") + f"?check={task_id}")


@require_safe
def check_workers_result(request, task_id: str):
    from django_q.models import Task

    task = Task.objects.filter(id=task_id).first()
    if task is None:
        return JsonResponse({"done": False})
    return JsonResponse(
        {
            "done": True,
            "success": task.success,
            "result": task.result if task.success else str(task.result),
            "seconds": (task.stopped - task.started).total_seconds(),
        }
    )


def csrf_failure(request, reason=""):
    """A refused form says why in the dashboard's own layout (Django's default page is bare)."""
    return render(request, "403_csrf.html", {"reason": reason}, status=403)
