"""The log writer loses no line, however the writer thread's flush falls against a caller's append."""

from __future__ import annotations

import io
import threading

from guard import logs


def test_a_flush_landing_in_the_middle_of_an_append_loses_no_line():
    """The worst interleaving, made to happen: the writer thread swaps the gathered lines while a caller is
    appending to them. The line must be written by that flush or the next, never dropped with the old list."""
    out = io.StringIO()
    writer = logs._GatheringWriter(out)

    class Interrupted(list[str]):
        def append(self, line: str) -> None:
            flusher = threading.Thread(target=writer.flush)  # the writer thread, at the worst moment
            flusher.start()
            flusher.join(timeout=0.2)  # it finishes here unless the append holds the lock it needs
            super().append(line)

    writer.lines = Interrupted()
    writer.msg('{"level":"info","event":"kept"}')
    writer.flush()
    assert '"kept"' in out.getvalue()


def test_lines_from_many_threads_all_arrive():
    out = io.StringIO()
    writer = logs._GatheringWriter(out)

    def spam(k: int) -> None:
        for i in range(2000):
            writer.msg(f'{{"level":"{"warning" if i % 100 == 0 else "info"}","n":"{k}-{i}"}}')

    threads = [threading.Thread(target=spam, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.flush()
    assert len(out.getvalue().splitlines()) == 8000
