from django.contrib import admin

from models_registry.models import ExportedModel


@admin.register(ExportedModel)
class ExportedModelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "format", "quant", "architecture", "size", "verified", "status")
