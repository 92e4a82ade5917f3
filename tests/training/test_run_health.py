"""The runs list shows a smoothed loss and flags overfitting; the run page does too and exports the best checkpoint."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import OVERFIT_EVALS, OVERFIT_TRAIN, add_curve, make_lineage
from training.selectors import run_health
from training.views.runs import best_checkpoint_step

pytestmark = pytest.mark.django_db


def test_the_overfitting_run_is_flagged_with_a_smoothed_loss():
    run = add_curve(make_lineage("over"), train=OVERFIT_TRAIN, evals=OVERFIT_EVALS)
    health = run_health([run])[run.pk]
    assert health["overfitting"]["best_step"] == 250 and health["overfitting"]["val_to"] == 7.62
    # The last logged loss is a 6.72 spike; the mean of the last 20 logs stays near the curve.
    assert run.last_loss == 6.72 and health["smoothed_loss"] < 2.0


def test_a_healthy_run_is_not_flagged():
    run = add_curve(make_lineage("ok"), train=[(10, 5.0), (20, 4.0)], evals=[(10, 5.5), (20, 4.5)])
    assert run_health([run])[run.pk] == {"smoothed_loss": 4.5, "overfitting": None}


def test_the_lists_and_the_run_page_say_so(viewer_client):
    run = add_curve(make_lineage("over"), train=OVERFIT_TRAIN, evals=OVERFIT_EVALS, checkpoints=[100, 250, 2000])
    add_curve(make_lineage("fine"), train=[(10, 5.0)], evals=[(10, 5.5)])
    listing = viewer_client.get(reverse("training:runs")).content.decode()
    assert listing.count('class="overfit-badge"') == 1
    assert "smoothed" in listing
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert 'id="overfitting-notice"' in page and "step 250" in page


def test_the_export_form_selects_the_best_checkpoint_and_shows_each_val_loss(operator_client):
    run = add_curve(make_lineage("best"), train=OVERFIT_TRAIN, evals=OVERFIT_EVALS, checkpoints=[100, 250, 2000])
    assert best_checkpoint_step(run) == 250
    page = operator_client.get(run.get_absolute_url()).content.decode()
    assert '<option value="250" selected>' in page
    assert "val loss 6.9200" in page and "val loss 7.6200" in page
