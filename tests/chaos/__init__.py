"""Chaos tests: break things on purpose (kill -9, outages, 429 storms, poison, a wrong key,
rebalances, SIGTERM) and let :mod:`tests.chaos.judge` check the worker's guarantees.

``test_chaos.py`` runs short versions in ``make test``; ``bench/chaos.py`` (``make chaos``) runs
long ones and prints one JSON line.
"""
