"""Use cases: one function per command, ``(run or providers, args) -> record``.

The CLI, the Prefect flows (``flows/``) and ``digest web`` call these; none of them does the work itself.

* :mod:`~digest.usecases.run` — the daily job: run, fetch, classify, summarise, render; runs and papers read back
* :mod:`~digest.usecases.status` — ``digest status``, the watchdog's alerts, the run artifact
* :mod:`~digest.usecases.readers` — votes (add, import, list), topics (list, suggest)
* :mod:`~digest.usecases.weekly` — the weekly edition
* :mod:`~digest.usecases.train` — train, eval, retrain from votes and seeds, classify a file
"""
