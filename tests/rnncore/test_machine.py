"""The machine a run records: the CPU's model, read from /proc/cpuinfo where there is one, and its cores."""

import os

from rnncore import machine

X86 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"
)
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\nHardware\t: BCM2835\n"
OLD_ARM = "Processor\t: ARMv7 Processor rev 4 (v7l)\nprocessor\t: 0\n"


def test_the_cpu_model_is_the_first_model_name_or_an_arm_boards_hardware():
    assert machine._cpuinfo_model(X86) == "AMD EPYC 7B13"
    assert machine._cpuinfo_model(ARM) == "BCM2835"
    assert machine._cpuinfo_model(OLD_ARM) == "ARMv7 Processor rev 4 (v7l)"
    assert machine._cpuinfo_model("processor\t: 0\n") is None  # a core's number is no model


def test_without_a_readable_cpuinfo_the_architecture_stands_in(tmp_path):
    assert machine.cpu_model(tmp_path / "missing")  # e.g. "x86_64", never empty


def test_the_cores_are_those_this_process_may_use():
    assert 1 <= machine.cpu_cores() <= (os.cpu_count() or 1)
