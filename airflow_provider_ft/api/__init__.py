"""Airflow-free core of the fine-tuning API client.

Requests in, typed results or one error type out. Everything here is shared by the sync hook and
the async trigger: request building (``endpoints``), retry policy (``policy``), error mapping
(``errors``), pagination (``pagination``) and the two transports (``transport``).
"""
