import pytest

from cairn.storage import InvalidArtifactURI, parse_artifact_uri, pvc_mount


def test_the_claim_is_the_volume_and_the_path_its_subpath() -> None:
    mount = pvc_mount(parse_artifact_uri("pvc://cairn-artifacts/ml/iris-1"), mount_path="/output")

    assert mount.volume == {
        "name": "cairn-artifact",
        "persistentVolumeClaim": {"claimName": "cairn-artifacts", "readOnly": False},
    }
    assert mount.volume_mount == {
        "name": "cairn-artifact",
        "mountPath": "/output",
        "subPath": "ml/iris-1",
        "readOnly": False,
    }
    assert mount.directory == "/output"


def test_without_subpath_the_claim_root_is_mounted_and_the_directory_is_inside() -> None:
    mount = pvc_mount(
        parse_artifact_uri("pvc://cairn-artifacts/ml/iris-1"), mount_path="/a", sub_path=False
    )

    assert "subPath" not in mount.volume_mount
    assert mount.directory == "/a/ml/iris-1"


def test_a_whole_claim_mounts_without_subpath_and_read_only() -> None:
    mount = pvc_mount(
        parse_artifact_uri("pvc://models"), mount_path="/models", volume_name="m", read_only=True
    )

    assert "subPath" not in mount.volume_mount
    assert mount.volume_mount["readOnly"] is True
    assert mount.volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


@pytest.mark.parametrize(
    ("uri", "mount_path", "volume_name", "message"),
    [
        ("file:///tmp/model", "/output", "artifact", "is not a pvc:// URI"),
        ("pvc://models/a", "/output", "Artifact_Volume", "is not a DNS-1123 label"),
        ("pvc://models/a", "relative", "artifact", "must be absolute"),
    ],
)
def test_what_cannot_be_mounted_is_refused(
    uri: str, mount_path: str, volume_name: str, message: str
) -> None:
    with pytest.raises(InvalidArtifactURI, match=message):
        pvc_mount(parse_artifact_uri(uri), mount_path=mount_path, volume_name=volume_name)
