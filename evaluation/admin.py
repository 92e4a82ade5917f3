from django.contrib import admin

from evaluation.models import EvalSuite, EvalTask, Evaluation, TaskResult


@admin.register(EvalSuite)
class EvalSuiteAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "task_count", "sha256", "created_at")
    search_fields = ("name",)


@admin.register(EvalTask)
class EvalTaskAdmin(admin.ModelAdmin):
    list_display = ("suite", "index", "repo", "title", "path")
    list_filter = ("suite",)


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("pk", "suite", "backend", "run", "step", "exported_model", "status", "tasks_done", "tasks_total")
    list_filter = ("status", "backend")


@admin.register(TaskResult)
class TaskResultAdmin(admin.ModelAdmin):
    list_display = ("evaluation", "task", "code_loss", "exact_match", "parses_first", "parses_final")
