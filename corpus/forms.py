"""Forms of the corpus pages: adding repositories, git import, fetch settings, curation, snapshots."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from corpus.services import repositories


def _name_error(exc: Exception) -> str:
    return str(getattr(exc, "message", exc))


# An echoed input line is cut here: a pasted 200,000-character line must not come back whole in a message.
ECHO_CHARS = 80


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` as a message may quote it: at most `limit` characters, with an ellipsis and the full length when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class RepositoryNamesForm(forms.Form):
    """One owner/name or a pasted list (one per line; commas and spaces also separate)."""

    names = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "golang/go\nspf13/cobra"}),
        label="Repositories",
        help_text="owner/name or a github.com URL, one per line",
    )
    fetch_now = forms.BooleanField(required=False, initial=True, label="Fetch them now")

    def clean_names(self) -> list[str]:
        names, errors = [], []
        for number, line in enumerate(self.cleaned_data["names"].splitlines(), start=1):
            found = []
            for item in re.split(r"[,\s]+", line.strip()):
                if not item:
                    continue
                try:
                    found.append(repositories.validate_repository_name(item))
                except Exception:  # noqa: BLE001 - ValueError or ValidationError: the line as a whole is reported
                    # One error per line, quoting the line: "not a repo" is one mistake, not "'not' is not ...".
                    errors.append(
                        f"line {number}: “{shorten(line)}” is not a GitHub repository: "
                        "expected owner/name or a github.com URL, e.g. golang/go"
                    )
                    break
            else:
                names.extend(name for name in found if name not in names)
        if errors:
            raise ValidationError(errors)
        if not names:
            raise ValidationError("Enter at least one owner/name.")
        return names


class SelectedRepositoriesForm(forms.Form):
    """Search results the operator ticked."""

    fetch_now = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, selected: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.selected = selected or []

    def clean(self):
        names = []
        for item in self.selected:
            try:
                names.append(repositories.validate_repository_name(item))
            except Exception as exc:  # noqa: BLE001
                raise ValidationError(_name_error(exc)) from None
        if not names:
            raise ValidationError("Tick at least one repository.")
        self.cleaned_data["names"] = names
        return self.cleaned_data


IMPORT_PATH_ERROR = (
    "No git repository to import there. Give the top folder of a git clone inside the import folder {root}."
)


def import_path_error() -> str:
    """One message for every refused import path: it must not tell which server paths exist."""
    from django.conf import settings

    return IMPORT_PATH_ERROR.format(root=settings.HRGC_IMPORT_ROOT)


class GitImportForm(forms.Form):
    path = forms.CharField(
        max_length=500,
        label="Path of a local git clone",
        widget=forms.TextInput(attrs={"size": 50, "placeholder": "/srv/hrgc/imports/cobra"}),
    )
    repo = forms.CharField(
        max_length=140,
        required=False,
        label="Store as owner/name",
        help_text="Optional; default: from the clone's origin URL",
    )

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["path"].help_text = f"A folder inside {settings.HRGC_IMPORT_ROOT} (HRGC_IMPORT_ROOT)"

    def clean_path(self) -> str:
        from django.conf import settings

        from corpus.gitimport import importable

        found = importable(self.cleaned_data["path"].strip(), settings.HRGC_IMPORT_ROOT)
        if found is None:
            raise ValidationError(import_path_error())
        return str(found)

    def clean_repo(self) -> str:
        value = self.cleaned_data["repo"].strip()
        if not value:
            return ""
        try:
            return repositories.validate_repository_name(value)
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(_name_error(exc)) from None


class GitHubSettingsForm(forms.Form):
    api_url = forms.URLField(
        required=False,
        max_length=300,
        label="API base URL",
        help_text="Blank: GITHUB_API_URL or https://api.github.com (GitHub Enterprise: …/api/v3)",
    )
    token = forms.CharField(
        required=False,
        max_length=300,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored on the server and never shown again. Blank keeps the current one.",
    )
    clear_token = forms.BooleanField(required=False, label="Remove the stored token")
    allowed_licenses = forms.CharField(max_length=500, label="Allowed licences", help_text="Comma-separated SPDX ids")
    go_only = forms.BooleanField(required=False, label="Only PRs that change .go files")

    def clean_api_url(self) -> str:
        from corpus.github.client import UnsafeURL, check_api_url
        from corpus.models import allowed_github_hosts

        value = (self.cleaned_data["api_url"] or "").strip().rstrip("/")
        if value:
            try:
                check_api_url(value, allowed_github_hosts(), unresolvable_ok=True)
            except UnsafeURL as exc:
                raise ValidationError(f"API base URL refused: {exc}.") from None
        return value

    def clean_allowed_licenses(self) -> str:
        ids = [item.strip() for item in self.cleaned_data["allowed_licenses"].split(",") if item.strip()]
        bad = [item for item in ids if not re.fullmatch(r"[A-Za-z0-9.+-]+", item)]
        if bad:
            raise ValidationError(f"Not an SPDX id: {', '.join(bad)}")
        if not ids:
            raise ValidationError("Allow at least one licence.")
        return ",".join(ids)


class CurationForm(forms.Form):
    action = forms.ChoiceField(choices=[("exclude", "Exclude"), ("include", "Include")])
    reason = forms.CharField(max_length=500, required=False)

    def clean(self):
        data = super().clean()
        if "reason" in self.errors:  # too long: that error is the one to show
            return data
        if data.get("action") == "exclude" and not (data.get("reason") or "").strip():
            raise ValidationError("Give a reason for excluding.")
        return data


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Letters, digits, dot, dash and underscore")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    use_filter = forms.BooleanField(required=False, label="Only PRs matching the current filter")
    filter_query = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValidationError("Use letters, digits, dot, dash and underscore.")
        from corpus.models import Snapshot

        if Snapshot.objects.filter(name=name).exists():
            raise ValidationError(f"A snapshot named {name} exists already.")
        return name
