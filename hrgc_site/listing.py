"""Sorting for list pages: a whitelisted ?sort= parameter, '-' for descending."""

from __future__ import annotations

from django.http import Http404


class ForgivingPaginationMixin:
    """ListView mixin: `?page=abc`, `0` or past the end shows the nearest real page instead of a 404."""

    def paginate_queryset(self, queryset, page_size):
        try:
            return super().paginate_queryset(queryset, page_size)
        except Http404:
            raw = str(self.request.GET.get(self.page_kwarg, "")).strip()
            past_the_end = raw.isdigit() and int(raw) > 1
            self.kwargs[self.page_kwarg] = "last" if past_the_end else 1
            return super().paginate_queryset(queryset, page_size)


class SortableListMixin(ForgivingPaginationMixin):
    """ListView mixin: `sort_fields` maps a public key to an ORM expression; `default_sort` applies otherwise."""

    sort_fields: dict[str, str] = {}
    default_sort = ""
    paginate_by = 50

    def current_sort(self) -> str:
        sort = self.request.GET.get("sort", self.default_sort)
        return sort if sort.lstrip("-") in self.sort_fields else self.default_sort

    def sort_queryset(self, queryset):
        sort = self.current_sort()
        if not sort:
            return queryset
        field = self.sort_fields[sort.lstrip("-")]
        descending = sort.startswith("-")
        order = field.lstrip("-") if descending else field
        expression = f"-{order}" if descending else order
        return queryset.order_by(expression, "-pk" if descending else "pk")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sort"] = self.current_sort()
        query = self.request.GET.copy()
        query.pop("page", None)
        query.pop("sort", None)
        context["query_without_sort"] = query.urlencode()
        query = self.request.GET.copy()
        query.pop("page", None)
        context["query_without_page"] = query.urlencode()
        return context
