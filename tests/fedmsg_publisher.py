"""Publishes messages with the real fedmsg library, for the bridge's interoperability test.

Usage: fedmsg_publisher.py MODE ENDPOINT COUNT
  MODE bind:    fedmsg binds ENDPOINT (its usual publisher); the bridge connects.
  MODE connect: fedmsg connects to ENDPOINT (an `active` publisher); the bridge binds.
Publishes COUNT bodhi.update.comment messages with msg {"seq": N, "text": "..."} on
topic org.fedoraproject.dev.bodhi.update.comment, one every 50 ms, after a pause that
lets the subscriber join.
"""

import sys
import time

import fedmsg
import fedmsg.config

mode, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = fedmsg.config.load_config([], None, filenames=[], disable_defaults=True)
config.update(
    dict(
        # An active publisher is named after the relay it connects to.
        name="relay_inbound" if mode == "connect" else "fmn-test.localhost",
        endpoints={"fmn-test.localhost": [endpoint]},
        active=(mode == "connect"),
        # The relay's inbound endpoint, which an active publisher connects to: the bridge.
        relay_inbound=[endpoint],
        topic_prefix="org.fedoraproject",
        environment="dev",
        sign_messages=False,
        validate_signatures=False,
        high_water_mark=0,
        io_threads=1,
        post_init_sleep=1.5,
        zmq_enabled=True,
        zmq_linger=2000,
        zmq_tcp_keepalive=0,
        zmq_reconnect_ivl=100,
        zmq_reconnect_ivl_max=1000,
    )
)
fedmsg.init(**config)
for seq in range(count):
    fedmsg.publish(
        topic="update.comment",
        modname="bodhi",
        msg={"seq": seq, "text": "caf\u00e9 \u2603 1e+16 -0.0", "comment": {"user": {"name": "alice"}}},
    )
    time.sleep(0.05)
fedmsg.destroy()
