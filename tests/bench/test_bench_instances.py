"""A function instance of the bench: the transfer's func.py under an fdk context, in a process of its own."""

import json
import queue

from fusion_extract.chain.messages import encode
from tests.bench.instances import Answer, Instance


def test_a_cold_instance_answers_its_one_request_through_the_handler_then_exits_with_its_cpu():
    # Given a new instance and a transfer message with a configuration the function refuses
    answers: queue.Queue[Answer] = queue.Queue()
    instance = Instance(answers)
    body = json.dumps(encode("transfer", run_id="run-1", files=["a.zip"]))

    # When it gets the message as its last
    instance.send({}, body, last=True)
    answer, exit = answers.get(timeout=60), answers.get(timeout=60)

    # Then the handler answered as the platform would see it (502, the error named), with the call's figures
    assert not answer.exited and answer.figures["status"] == 502
    assert answer.figures["outcome"]["error"] == "ConfigError"
    assert answer.figures["wall_s"] > 0 and answer.figures["peak_rss_mib"] > 0
    assert answer.figures["disk_write_bytes"] == 0
    # And the instance exited, its whole CPU (start-up and imports included) above the call's
    assert exit.exited and exit.figures["status"] == 0
    assert exit.figures["cpu_s"] > answer.figures["cpu_s"]


def test_an_instance_told_to_tell_its_own_peak_counts_the_process_that_served_not_the_harness():
    # Given a harness holding 300 MiB (a process it starts inherits that peak in its own ru_maxrss)
    held = bytearray(300 * 2**20)
    held[::4096] = b"\1" * len(range(0, len(held), 4096))
    answers: queue.Queue[Answer] = queue.Queue()
    instance = Instance(answers, own_rusage=True)
    body = json.dumps(encode("transfer", run_id="run-1", files=["a.zip"]))

    # When it answers one request and exits
    instance.send({}, body, last=True)
    answer, exit = answers.get(timeout=60), answers.get(timeout=60)

    # Then it told the kernel's peak of the process that served: its own VmHWM, nothing of the harness's
    assert answer.figures["status"] == 502 and exit.exited and exit.figures["status"] == 0
    assert instance.max_rss_mib is not None
    assert instance.max_rss_mib < 200 < len(held) / 2**20
    assert abs(instance.max_rss_mib - answer.figures["peak_rss_mib"]) < 8
