"""`apply`: kubectl is only run when it exists and the cluster answers; each failure is clear."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dockyard.deploy import DeploySpec, KubernetesUnavailable
from dockyard.deploy.kubernetes import apply, check_cluster, write_manifests
from dockyard.errors import DeployError

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed on this host"
)

# A cluster entry nobody listens on: port 1 on loopback refuses at once. The token keeps
# kubectl from prompting for a username.
UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
- name: nobody
  user: {token: not-a-real-token}
"""


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    out = tmp_path / "k8s"
    write_manifests(
        DeploySpec(name="digits", image="registry.example.com/digits:1"), out
    )
    return out


def test_missing_kubectl_is_an_environment_error_saying_how_to_get_it(
    manifests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(KubernetesUnavailable) as info:
        apply(manifests)
    err = info.value
    assert err.exit_code == 2
    assert "kubectl is not installed" in err.problem
    assert "install kubectl" in err.fix and "--apply" in err.fix


@needs_kubectl
def test_unreachable_kubeconfig_is_an_environment_error_naming_the_kubeconfig(
    manifests: Path, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    with pytest.raises(KubernetesUnavailable) as info:
        apply(manifests, kubeconfig=kubeconfig, timeout_s=5)
    err = info.value
    assert err.exit_code == 2
    assert "cannot reach the Kubernetes cluster" in err.problem
    assert str(kubeconfig) in err.problem
    assert "127.0.0.1:1" in err.problem + err.details
    assert "kubectl cluster-info" in err.fix


@needs_kubectl
def test_kubeconfig_that_does_not_exist_is_named(
    manifests: Path, tmp_path: Path
) -> None:
    with pytest.raises(KubernetesUnavailable) as info:
        check_cluster(tmp_path / "nope.yaml")
    assert "nope.yaml" in info.value.problem and "--kubeconfig" in info.value.fix


def test_apply_without_rendered_manifests_says_to_render_first(tmp_path: Path) -> None:
    with pytest.raises(DeployError) as info:
        apply(tmp_path)
    assert "all.yaml" in info.value.problem
    assert "dockyard deploy kubernetes --out" in info.value.fix
