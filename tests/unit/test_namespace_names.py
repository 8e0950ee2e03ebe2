import re

from tests.support.namespaces import MAX_NAME_LENGTH, unique_namespace_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_name_is_a_dns_label_that_names_the_test() -> None:
    name = unique_namespace_name("test_pod_runs[Trainer_Image]")

    assert DNS_LABEL.match(name)
    assert name.startswith("cairn-test-pod-runs-trainer-image-")


def test_long_test_names_are_cut_to_a_valid_length() -> None:
    name = unique_namespace_name("test_" + "very_long_" * 20 + "[param-]")

    assert len(name) <= MAX_NAME_LENGTH
    assert DNS_LABEL.match(name)


def test_names_are_unique() -> None:
    assert len({unique_namespace_name("test_x") for _ in range(50)}) == 50
