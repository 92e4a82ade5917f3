from django.contrib import admin

from training import models


@admin.register(models.TokenizerVersion)
class TokenizerVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "snapshot", "vocab_size", "status", "created_at")


@admin.register(models.DatasetBuild)
class DatasetBuildAdmin(admin.ModelAdmin):
    list_display = ("name", "snapshot", "tokenizer", "status", "train_tokens", "val_tokens")


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("name", "family", "preset", "status", "step", "last_loss", "best_val_loss")
    list_filter = ("family", "status")


admin.site.register(models.Checkpoint)
