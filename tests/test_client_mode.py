#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Client-mode vhost-user ports: vhostd connects to the guest's socket and
keeps reconnecting, both when the guest restarts and when vhostd itself is
killed and started again; a server socket left by the killed vhostd is
cleaned up on restart."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import Guest, Vhostd, check, run, wait_until  # noqa: E402

B = "02:00:00:00:0b:0b"


def flowing(d, port, n=2000):
    before = d.port(port)["tx_packets"]
    wait_until(lambda: d.port(port)["tx_packets"] > before + n, 30,
               "traffic out of %s" % port)


def test_client_mode(t):
    d = Vhostd(t, {"br0": {}},
               {"c": {"type": "vhost-user", "bridge": "br0", "mode": "client",
                      "path": t.path("c.sock")},
                "s": {"type": "vhost-user", "bridge": "br0",
                      "path": t.path("s.sock")}}).start()
    # The guest's socket does not exist yet: vhostd waits for it.
    check(d.port("c")["state"] == "down", "client port up with no peer")
    b = Guest(t, "b", t.path("s.sock"), mode="rxonly", mac=B).start()
    d.wait_up("s")

    # 1. The guest (socket server) appears: vhostd connects.
    a = Guest(t, "a0", t.path("c.sock"), server=True, mode="txonly", peer=B,
              mac="02:00:00:00:0a:0a").start()
    d.wait_up("c")
    flowing(d, "s")

    # 2. The guest restarts: vhostd reconnects on its own.
    a.kill()
    wait_until(lambda: d.port("c")["state"] == "down", 20, "c down")
    os.unlink(t.path("c.sock"))  # as QEMU does before it listens again
    a = Guest(t, "a1", t.path("c.sock"), server=True, mode="txonly", peer=B,
              mac="02:00:00:00:0a:0a").start()
    d.wait_up("c")
    flowing(d, "s")
    check(d.port("c")["connects"] == 2, "connects: %s" % d.port("c"))

    # 3. vhostd is killed and restarted: it reconnects to the running guest
    #    (which never restarts), and replaces its own stale server socket.
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    check(os.path.exists(t.path("s.sock")), "killed vhostd left no socket?")
    t0 = time.monotonic()
    d.start()
    d.wait_up("c")
    print("client port back %.1fs after vhostd restart" %
          (time.monotonic() - t0))
    check(a.alive(), "the guest died with vhostd")
    b.kill()  # a virtio-user client does not reconnect: start it again
    b = Guest(t, "b1", t.path("s.sock"), mode="rxonly", mac=B).start()
    d.wait_up("s")
    flowing(d, "s")
    check(d.stop() == 0, "vhostd exit code")
    check(not os.path.exists(t.path("s.sock")), "server socket left behind")


if __name__ == "__main__":
    run(test_client_mode)
