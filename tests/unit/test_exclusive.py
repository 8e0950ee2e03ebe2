"""One reconcile of an object at a time, and no lock left behind per object once it is done."""

import threading
import time

from cairn.controllers import exclusive


def test_a_second_reconcile_of_the_same_object_waits_for_the_first() -> None:
    order: list[str] = []
    first_inside = threading.Event()

    def first() -> None:
        with exclusive.exclusive("modelversions", "ns", "a"):
            first_inside.set()
            time.sleep(0.2)
            order.append("first done")

    def second() -> None:
        first_inside.wait()
        with exclusive.exclusive("modelversions", "ns", "a"):
            order.append("second inside")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert order == ["first done", "second inside"]


def test_other_objects_do_not_wait() -> None:
    with exclusive.exclusive("modelversions", "ns", "a"):
        done = threading.Event()

        def other() -> None:
            with exclusive.exclusive("modelversions", "ns", "b"):
                done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(5)
        thread.join(5)


def test_no_lock_is_kept_for_objects_no_longer_reconciled() -> None:
    for index in range(1000):  # a churn of objects, each reconciled once and deleted
        with exclusive.exclusive("trainingruns", "ns", f"run-{index}"):
            assert exclusive.held() >= 1
    assert exclusive.held() == 0
