"""The job engine: batch work (a study's re-analysis) handed to Celery workers on any
number of machines, or run in the asking process when no broker is configured.

``work``: what one photo's task does and the retry policy, the same in a worker and
in process (no Celery import); ``engine``: the Celery app, its task and the worker;
``batch``: start a batch (send its tasks, or run them here) and follow it.
"""
