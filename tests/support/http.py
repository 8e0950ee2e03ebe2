"""HTTP from the test process to loopback and cluster addresses."""

import requests


def get_or_none(url: str, timeout: float = 5) -> requests.Response | None:
    """GET `url`; None when nothing answers (yet), so callers can poll."""
    with requests.Session() as session:
        # Cluster and loopback addresses must never be sent to a proxy from the environment.
        session.trust_env = False
        try:
            return session.get(url, timeout=timeout)
        except requests.ConnectionError:
            return None
