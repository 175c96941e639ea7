"""The regulation workflow: bookings, orientations, declarations, dashboards, INT_R02 / INT_R03 / INT_L01.

Pure pieces (``scope``, ``queries``, ``dashboards``, ``appointments``, ``contextual``, ``csv_export``)
build Elasticsearch bodies and parse inputs without any I/O; services (``booking``, ``orientations``,
``declarations``, ``accounts``) run them through the one ``Executor``.
"""
