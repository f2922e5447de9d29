"""Views: what rblwatch shows, as pure functions of records and values (SPEC §9, §10).

Each module turns model records (pairs, list rows, events, check results, lists) into the
JSON objects, HTML and text tables the CLI prints and the HTTP listener serves. Nothing here
opens a socket, reads a store or imports a web framework: the callers read, the views format,
so `rblwatch status --format json` prints exactly what `GET /api/v1/status` serves without
loading the listener.
"""
