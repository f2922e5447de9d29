"""Alerts (SPEC §12): the outbox sender and the payload formats (json, slack, alertmanager).

`formats` is pure: an event and its context in, bytes and headers out. `sender` is the I/O: one
asyncio task per receiver drains that receiver's outbox rows in order, and for Alertmanager
receivers also re-posts the alerts that are still firing.
"""
