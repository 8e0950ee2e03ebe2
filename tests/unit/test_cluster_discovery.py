from pathlib import Path

import pytest

from tests.support.cluster import ClusterUnavailable, find_or_start_cluster
from tests.support.operator import free_local_port

KUBECONFIG_TEMPLATE = """\
apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: nobody
  user: {{token: nothing}}
contexts:
- name: gone
  context: {{cluster: gone, user: nobody}}
current-context: gone
"""


def test_without_a_reachable_cluster_the_error_says_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_kubeconfig = tmp_path / "kubeconfig"
    # Nothing listens on a port just freed: the connection is refused at once.
    dead_kubeconfig.write_text(KUBECONFIG_TEMPLATE.format(port=free_local_port()))
    monkeypatch.setenv("KUBECONFIG", str(dead_kubeconfig))
    monkeypatch.setenv("CAIRN_LOCALKUBE_DIR", str(tmp_path / "localkube"))
    monkeypatch.setenv("CAIRN_TEST_START_CLUSTER", "0")

    with pytest.raises(ClusterUnavailable) as error:
        find_or_start_cluster()

    message = str(error.value)
    assert f"$KUBECONFIG: {dead_kubeconfig}:" in message
    assert f"local cluster: {tmp_path}/localkube/kubeconfig does not exist" in message
    assert "CAIRN_TEST_START_CLUSTER=0" in message
    assert "pytest -m unit" in message
