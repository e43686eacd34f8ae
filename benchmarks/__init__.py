"""seriesgen's benchmarks: two scripts that print figures, and the modules they share.

Entry points (run as scripts, see README.md):

* ``nightly.py`` - the nightly generation through in-process Dagster runs;
* ``daemon_night.py`` - the nights as a real ``dagster-daemon`` runs them.

Shared modules, one job each:

* ``common`` - defaults, the arguments both take, the header facts (commit, masked
  command, peak RSS), progress lines;
* ``databases`` - refusing or resetting the application database, ``ANALYZE``,
  counts, throw-away PostgreSQL databases;
* ``seeding`` - the synthetic branches, configurations and series, the protected
  rows and the edits;
* ``event_log`` - engine, step and launch times from the instance's event records;
* ``raw_baseline`` - the core's expansion of the cold snapshots written in one go;
* ``steps`` - ``nightly.py``'s steps in child processes, figures handed back as JSON;
* ``report`` - ``nightly.py``'s tables, targets and JSON;
* ``daemon_process``, ``night_figures``, ``daemon_round``, ``daemon_report`` -
  ``daemon_night.py``'s daemon, its measuring, its round of nights and its tables.
"""
