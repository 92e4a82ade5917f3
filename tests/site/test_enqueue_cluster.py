"""A job queued without a cluster name goes to the `hrgc` cluster, whichever cluster's worker queues it (a
training worker that finishes a run queues the evaluations of a family comparison)."""

from __future__ import annotations

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ

from hrgc_site.jobs import enqueue
from tests.factories import make_lineage

pytestmark = pytest.mark.django_db


def test_a_job_queued_by_a_training_worker_goes_to_the_default_cluster(monkeypatch):
    run = make_lineage("enqueue")
    monkeypatch.setattr(Conf, "CLUSTER_NAME", "long")  # as in a worker of the `long` cluster
    enqueue(run, "training.tasks.runs.train_run")
    enqueue(run, "training.tasks.runs.train_run", cluster="long")
    assert sorted(OrmQ.objects.values_list("key", flat=True)) == ["hrgc", "long"]
