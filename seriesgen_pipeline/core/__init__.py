"""The pure domain of seriesgen: no Dagster, no SQLAlchemy (``test_layers.py`` checks).

One module per concept:

- ``limits``: the ranges and lengths every layer checks against;
- ``clock``: instants and wall-clock times as text;
- ``config``: configuration scopes, precedence and provenance;
- ``recurrence``: the RRULE subset;
- ``timezones``: wall clock to UTC under the DST policy;
- ``series``: a series and its validation;
- ``snapshot``: a series with its resolved configuration, as one run sees it;
- ``occurrences``: a series expanded over a window, with its warnings;
- ``generation``: occurrences to the session values a series wants;
- ``reconcile``: desired against existing rows, what to write;
- ``incremental``: whether a series continues its last generation;
- ``conflicts``: the conflict codes and what to report;
- ``errors``: the errors, each with its code;
- ``readers``: stored values read one by one;
- ``datafile``: the YAML/JSON data file, validated whole;
- ``jsonable``: the JSON form of the core's values.
"""
