"""A separate process that uses the store or the target locks, for cross-process tests.

Run as `python tests/store/worker.py COMMAND ARGS...` with `tests.conftest.subprocess_env()`
as the environment. Commands that must start together print `ready` and wait for a line
on standard input before they act.

    migrate URL                      open the store (running migrations), print `opened`
    claim URL SCHEDULE SLOTS...      claim each slot, print the claimed ones as JSON
    hold URL LEDGER_ID               hold the lock, print `held`, release on a stdin line
    lock-loop URL LEDGER_ID LOG N    N times: hold, append `enter PID` and `exit PID` to LOG
    leave-running URL LEDGER_ID      start a run, record one write, exit without finishing
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from envsync.locks import TargetLocks
from envsync.model import Op, RunMode
from envsync.store import RunTrigger, Store


def wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def migrate(url: str) -> None:
    wait_for_go()
    Store.open(url).close()
    print("opened", flush=True)


def claim(url: str, schedule: str, slots: list[str]) -> None:
    with Store.open(url) as store:
        wait_for_go()
        claimed = [
            slot for slot in slots if store.claim_tick(schedule, datetime.fromisoformat(slot))
        ]
    print(json.dumps(claimed), flush=True)


async def hold(url: str, ledger_id: str) -> None:
    locks = TargetLocks(url)
    async with locks.hold(ledger_id, timeout_s=30):
        print("held", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    print("released", flush=True)


async def lock_loop(url: str, ledger_id: str, log: Path, rounds: int) -> None:
    locks = TargetLocks(url)
    wait_for_go()
    for _ in range(rounds):
        async with locks.hold(ledger_id, timeout_s=60):
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"enter {os.getpid()}\n")
            # Yield to other tasks and processes while holding, to give an interleaving
            # every chance to show.
            await asyncio.sleep(0.002)
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"exit {os.getpid()}\n")
    print("done", flush=True)


def leave_running(url: str, ledger_id: str) -> None:
    store = Store.open(url)
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
    store.record_written(run_id, ledger_id, "BRIDGE_VERSION", None, Op.UPDATE)
    print(run_id, flush=True)
    # Exit without finish_run, as a killed process would.
    os._exit(0)


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "migrate":
        migrate(url)
    elif command == "claim":
        claim(url, rest[0], rest[1:])
    elif command == "hold":
        asyncio.run(hold(url, rest[0]))
    elif command == "lock-loop":
        asyncio.run(lock_loop(url, rest[0], Path(rest[1]), int(rest[2])))
    elif command == "leave-running":
        leave_running(url, rest[0])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
