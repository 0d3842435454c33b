"""The profile's split of py-spy samples into threads waiting and threads at work."""

from tests.bench.profile import summarise, totals, waiting

WORKER = "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83)"
ANSWER = "HTTPConnection.getresponse (urllib3/connection.py:9);HTTPResponse.begin (http/client.py:3)"
BODY = "HTTPResponse.read (http/client.py:4);HTTPResponse._fp_read (urllib3/response.py:5)"


def test_idle_workers_locks_and_awaited_answers_are_waiting_but_reading_a_body_is_work():
    assert waiting(WORKER.split(";"))
    assert waiting(["main (a.py:1)", "Condition.wait (threading.py:320)"])
    assert waiting(
        [
            "urlopen (urllib3/connectionpool.py:1)",
            "poll_wait_for_socket.<locals>.do_poll (urllib3/util/wait.py:2)",
        ]
    )
    assert waiting(
        [
            *ANSWER.split(";"),
            "HTTPResponse._read_status (http/client.py:2)",
            "SocketIO.readinto (socket.py:1)",
        ]
    )
    assert not waiting([*BODY.split(";"), "SocketIO.readinto (socket.py:706)"])
    assert not waiting(["main (a.py:1)", "Inflater._inflate (fusion_extract/resumable.py:382)"])
    assert not waiting([*WORKER.split(";"), "_WorkItem.run (concurrent/futures/thread.py:58)"])


def test_shares_are_of_the_samples_at_work(tmp_path):
    # Given 12 samples: 6 waiting for an answer or idle, 2 with no Python frame, 3 inflating, 1 hashing
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text(
        " 2\n"
        f"{WORKER} 4\n"
        f"{ANSWER};SocketIO.readinto (socket.py:706) 2\n"
        "main (a.py:1);Inflater._inflate (fusion_extract/resumable.py:382) 3\n"
        "main (a.py:1);Sha256.update (fusion_extract/resumable.py:90) 1\n"
    )

    # When they are summarised
    table = summarise(collapsed, 5)

    # Then the waiting samples and those of the bare interpreter are counted apart; the rest shares 100 %
    assert table.startswith(
        "12 samples: 6 (50%) of threads waiting (for an answer, on a queue or lock), 0 (0%) importing,"
        " 2 (17%) with no Python frame (the interpreter starting or ending), 4 at work"
    )
    assert "   75.0%  Inflater._inflate (fusion_extract/resumable.py)" in table
    assert "   25.0%  Sha256.update (fusion_extract/resumable.py)" in table


def test_counters_of_every_instance_are_added_up(tmp_path):
    # Given two instances' `perf stat -x ,` outputs, one after the other in one file
    counts = tmp_path / "counts.txt"
    instance = (
        "# started on Sun Dec  6 23:40:00 2026\n\n"
        "{ms},msec,task-clock,{ms}000000,100.00,0.990,CPUs utilized\n"
        "{faults},,page-faults,{ms}000000,100.00,0.1,K/sec\n"
        "{switches},,context-switches,{ms}000000,100.00,0.1,K/sec\n"
    )
    counts.write_text(
        instance.format(ms="1500.25", faults=1000, switches=40)
        + instance.format(ms="250.75", faults=24, switches=2)
    )

    # When they are summed up, Then each counter is the sum over the instances, CPU in seconds
    assert totals(counts) == "CPU 1.751 s, page faults 1024, context switches 42"
