"""Fedora's own code as the oracle: what the schema classes and fedmsg.meta say of a message.

Run with the oracle venv (`localstack/bootstrap.sh` creates `.venv-oracle`):

    .venv-oracle/bin/python tests/oracle/oracle.py classes
        every registered schema class (entry points `fedora.messages`) and fedmsg.meta
        processor, one JSON object a line
    .venv-oracle/bin/python tests/oracle/oracle.py cases --fixtures DIR [--seed 16] [--sample N]
        [--fedora-messaging-only]
        the differential cases (see cases.py), each with Fedora's answers, one JSON object
        a line
    .venv-oracle/bin/python tests/oracle/oracle.py export-schemas > crates/fmn-messages/schemas/fedora-messaging.json
        every class's body schema, which fmn validates fedora-messaging bodies against
    .venv-oracle/bin/python tests/oracle/oracle.py answer < messages.jsonl
        Fedora's answers for messages given one a line (fedora-messaging
        `{topic, headers, body, id}` or fedmsg envelopes)

Fields answered (fedora-messaging): valid (the class's own `validate()`; `null` when its
schema files are not installed), usernames, packages, containers, modules, flatpaks, groups,
agent, url, summary, app_name, severity. A property that raises is answered
`{"raised": "..."}`. fedmsg era: usernames, packages, agent, link, subtitle (the summary),
title, through `fedmsg.meta`.
"""

import argparse
import json
import logging
import os
import sys
import tempfile
from importlib.metadata import entry_points

logging.disable(logging.CRITICAL)

FIELDS = [
    ("usernames", "usernames"),
    ("packages", "packages"),
    ("containers", "containers"),
    ("modules", "modules"),
    ("flatpaks", "flatpaks"),
    ("groups", "groups"),
    ("agent", "agent_name"),
    ("url", "url"),
    ("summary", "summary"),
    ("app_name", "app_name"),
    ("severity", "severity"),
]


def registry():
    """schema name -> (class, distribution name), from the `fedora.messages` entry points."""
    from fedora_messaging import message as fm

    out = {}
    for ep in entry_points(group="fedora.messages"):
        try:
            cls = ep.load()
        except Exception:  # a broken package: reported as uncovered
            continue
        # Two packages may register one name (`discourse.event.v1`: discourse2fedmsg-messages
        # and webhook-to-fedora-messaging-messages): the class is the one fedora-messaging
        # itself loads for that name, which every consumer (FMN 3 included) gets.
        chosen = fm.get_class(ep.name)
        if chosen is not cls and chosen is not fm.Message:
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        out[ep.name] = (cls, dist)
    return out


def _jsonable(v):
    if isinstance(v, (set, frozenset, tuple)):
        return sorted(str(x) if x is not None else "None" for x in v)
    if isinstance(v, list):
        return sorted(str(x) if x is not None else "None" for x in v)
    return v


def fm_answer(reg, msg):
    """Fedora's answers for one fedora-messaging message `{topic, headers, body, id}`."""
    import jsonschema

    headers = msg.get("headers") or {}
    schema = headers.get("fedora_messaging_schema")
    known = schema in reg
    from fedora_messaging import message as fm

    cls = reg[schema][0] if known else fm.Message
    out = {"schema_known": known}
    try:
        m = cls(body=msg.get("body"), topic=msg.get("topic"), headers=dict(headers))
    except Exception as e:  # the consumer cannot even build it: rejected
        out["valid"] = False
        out["reason"] = f"constructor raised {type(e).__name__}: {e}"[:300]
        for name, _attr in FIELDS:
            out[name] = {"raised": "constructor raised"}
        return out
    try:
        m.validate()
        out["valid"] = True
    except jsonschema.ValidationError as e:
        out["valid"] = False
        out["reason"] = e.message[:300]
    except Exception as e:  # schema files missing (ci-messages), broken schema
        out["valid"] = None
        out["reason"] = f"{type(e).__name__}: {e}"[:300]
    for name, attr in FIELDS:
        try:
            out[name] = _jsonable(getattr(m, attr))
        except Exception as e:
            out[name] = {"raised": f"{type(e).__name__}: {e}"[:200]}
    return out


def get_name(cls):
    from fedora_messaging.message import get_name as name

    return name(cls)


def wire_headers(cls, topic, body):
    """The headers a publisher of `cls` would send for this body (sent-at fixed)."""
    try:
        m = cls(body=body, topic=topic)
    except Exception:
        return {"fedora_messaging_schema": get_name(cls), "fedora_messaging_severity": 20}
    h = dict(m._headers)
    h["sent-at"] = "2025-01-01T00:00:00+00:00"
    return h


_FEDMSG = None


def fedmsg_config():
    """fedmsg.meta set up offline (no config directory, no endpoints)."""
    global _FEDMSG
    if _FEDMSG is None:
        import fedmsg.config
        import fedmsg.meta

        d = tempfile.mkdtemp()
        p = os.path.join(d, "fedmsg.py")
        with open(p, "w") as f:
            f.write("config = dict(endpoints={}, sign_messages=False, validate_signatures=False)\n")
        config = fedmsg.config.load_config(filenames=[p], invalidate_cache=True)
        fedmsg.meta.make_processors(**config)
        _FEDMSG = config
    return _FEDMSG


def processors():
    import fedmsg.meta

    fedmsg_config()
    return list(fedmsg.meta.processors)


def fedmsg_answer(env):
    """fedmsg.meta's answers for one fedmsg envelope."""
    import fedmsg.meta

    config = fedmsg_config()
    msg = {k: v for k, v in env.items() if k not in ("expected", "computed", "source", "app")}
    out = {}
    try:
        p = fedmsg.meta.msg2processor(msg, **config)
        out["processor"] = type(p).__name__
    except Exception as e:
        out["processor"] = f"raised {type(e).__name__}"
    calls = [
        ("usernames", fedmsg.meta.msg2usernames),
        ("packages", fedmsg.meta.msg2packages),
        ("agent", fedmsg.meta.msg2agent),
        ("link", fedmsg.meta.msg2link),
        ("summary", fedmsg.meta.msg2subtitle),
        ("title", fedmsg.meta.msg2title),
    ]
    for name, f in calls:
        try:
            out[name] = _jsonable(f(msg, **config))
        except Exception as e:
            out[name] = {"raised": f"{type(e).__name__}: {e}"[:200]}
    # A processor without `agent` gets `msg2usernames(...).pop()`: with several usernames,
    # any of them, by the strings' hash order (PYTHONHASHSEED, random in production). The
    # candidates are given so that the comparison can accept any of them.
    try:
        p = fedmsg.meta.msg2processor(msg, **config)
        users = out.get("usernames")
        if p.agent is NotImplemented and isinstance(users, list) and len(users) > 1:
            out["agent_candidates"] = users
    except Exception:
        pass
    return out


def cmd_classes(_args):
    for name, (cls, dist) in sorted(registry().items()):
        print(json.dumps({"kind": "schema", "schema": name, "package": dist,
                          "class": f"{cls.__module__}.{cls.__qualname__}"}))
    for p in processors():
        print(json.dumps({"kind": "processor", "processor": type(p).__name__,
                          "app": getattr(p, "__name__", None)}))


def _strip(s):
    """A schema without its prose (`description`), for a smaller copy in fmn."""
    if isinstance(s, dict):
        return {k: (_strip(v) if k not in ("enum", "const") else v)
                for k, v in s.items() if k not in ("description", "desctiption")}
    if isinstance(s, list):
        return [_strip(x) for x in s]
    return s


def cmd_export_schemas(_args):
    """Every registered class's body schema, as fmn-messages embeds it (schemas/)."""
    from importlib.metadata import version

    from fedora_messaging import message as fm

    reg = registry()
    out = {"generated_by": "tests/oracle/oracle.py export-schemas",
           "packages": {}, "schemas": {}, "unavailable": []}
    for name, (cls, dist) in sorted(reg.items()):
        if cls.__module__.startswith("fedora_messaging."):
            continue
        bs = cls.body_schema
        if not isinstance(bs, dict):  # loaded from files no package installs (ci-messages)
            out["unavailable"].append(name)
            continue
        out["packages"][dist] = version(dist)
        out["schemas"][name] = {"package": dist, "class": f"{cls.__module__}.{cls.__qualname__}",
                                "body_schema": _strip(bs)}
    out["base_body_schema"] = _strip(fm.Message.body_schema)
    json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sys.stdout.write("\n")


def cmd_answer(_args):
    reg = registry()
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if "headers" in msg and "body" in msg:
            print(json.dumps(fm_answer(reg, msg), sort_keys=True))
        else:
            print(json.dumps(fedmsg_answer(msg), sort_keys=True))


def cmd_cases(args):
    import cases

    for case in cases.build(args.fixtures, args.seed, args.sample, args.fedmsg_sample,
                            args.rounds, fedmsg=not args.fedora_messaging_only):
        print(json.dumps(case, sort_keys=True, ensure_ascii=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("classes")
    sub.add_parser("answer")
    sub.add_parser("export-schemas")
    c = sub.add_parser("cases")
    c.add_argument("--fixtures", required=True)
    c.add_argument("--seed", type=int, default=16)
    c.add_argument("--sample", type=int, default=0,
                   help="at most this many generated variants per class (0: all)")
    c.add_argument("--rounds", type=int, default=1,
                   help="rounds of generated variants per example (more: a larger set)")
    c.add_argument("--fedora-messaging-only", action="store_true",
                   help="no fedmsg-era cases (FMN 3 consumes fedora-messaging messages only)")
    c.add_argument("--fedmsg-sample", type=int, default=0,
                   help="at most this many generated variants per fedmsg example (0: all)")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    {"classes": cmd_classes, "answer": cmd_answer, "cases": cmd_cases,
     "export-schemas": cmd_export_schemas}[args.cmd](args)


if __name__ == "__main__":
    main()
