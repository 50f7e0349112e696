"""The differential cases: real examples and generated variants of them, with Fedora's answers.

Seeds are the examples copied from Fedora's packages' test suites
(`crates/fmn-messages/tests/fixtures/`: fedora-messaging examples and rejected bodies, fedmsg
envelopes), plus one body synthesised from its JSON schema for every registered class that
has no example. Variants of each fedora-messaging example: other user names, other package
names, each top-level field left out, one nested field left out, a null, non-ASCII text, a
very long value, a list cut to one element, a list of many. A variant is kept only when the
class's own `validate()` accepts it (rejected variants are kept as negative cases, a few per
class). fedmsg examples get the renamed variants. Everything is drawn from `random.Random`
seeded with `--seed` and the example's id, so a run is reproducible.

Each case: `{kind, package, schema|processor, variant, seed_id, message, oracle}`.
"""

import copy
import hashlib
import json
import os
import random

import oracle

USERS = ["zbyszek", "ngompa", "a-user_2", "kevin", "sgallagh", "x"]
PACKAGES = ["python-requests", "rust-serde", "kernel", "gnome-shell", "r-cran-x", "0ad"]
NONASCII = " — ünïcødé ✓ 日本語 «ok»"


def _rng(seed, key):
    h = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return random.Random(int(h[:16], 16))


def _paths(v, path=()):
    """Every (path, value) in a JSON value, depth first."""
    yield path, v
    if isinstance(v, dict):
        for k in sorted(v):
            yield from _paths(v[k], path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _paths(x, path + (i,))


def _set(body, path, value):
    cur = body
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value


def _delete(body, path):
    cur = body
    for p in path[:-1]:
        cur = cur[p]
    del cur[path[-1]]


def _replace_text(v, old, new):
    """Every string in `v` with `old` replaced by `new` where it stands as a whole word."""
    import re

    pat = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(old) + r"(?![A-Za-z0-9_])")
    if isinstance(v, str):
        return pat.sub(new, v)
    if isinstance(v, list):
        return [_replace_text(x, old, new) for x in v]
    if isinstance(v, dict):
        return {_replace_text(k, old, new) if k == old else k: _replace_text(x, old, new)
                for k, x in v.items()}
    return v


def _variants(body, answer, rng):
    """(name, body) variants of one fedora-messaging body."""
    out = []
    users = [u for u in answer.get("usernames", []) if isinstance(u, str) and len(u) >= 3]
    if users:
        b = body
        for u in users:
            b = _replace_text(b, u, rng.choice(USERS))
        out.append(("other-users", b))
    pkgs = [p for p in answer.get("packages", []) if isinstance(p, str) and len(p) >= 3]
    if pkgs:
        b = body
        for p in pkgs:
            b = _replace_text(b, p, rng.choice(PACKAGES))
        out.append(("other-packages", b))
    if isinstance(body, dict):
        for k in sorted(body):
            b = copy.deepcopy(body)
            del b[k]
            out.append((f"without-{k}", b))
    nodes = list(_paths(body))
    nested = [p for p, _ in nodes if len(p) >= 2 and isinstance(p[-1], str)]
    if nested:
        p = rng.choice(nested)
        b = copy.deepcopy(body)
        _delete(b, p)
        out.append(("without-nested", b))
    leaves = [p for p, v in nodes if p and not isinstance(v, (dict, list))]
    if leaves:
        p = rng.choice(leaves)
        b = copy.deepcopy(body)
        _set(b, p, None)
        out.append(("null", b))
    strings = [p for p, v in nodes if p and isinstance(v, str)]
    if strings:
        p = rng.choice(strings)
        b = copy.deepcopy(body)
        cur = dict(_paths(b))[p]
        _set(b, p, cur + NONASCII)
        out.append(("non-ascii", b))
        p = rng.choice(strings)
        b = copy.deepcopy(body)
        cur = dict(_paths(b))[p]
        _set(b, p, (cur or "v") * max(1, 2000 // max(1, len(cur or "v"))))
        out.append(("long", b))
    lists = [(p, v) for p, v in nodes if p and isinstance(v, list) and v]
    if lists:
        long_lists = [x for x in lists if len(x[1]) >= 2]
        if long_lists:
            p, v = rng.choice(long_lists)
            b = copy.deepcopy(body)
            _set(b, p, copy.deepcopy(v[:1]))
            out.append(("list-of-one", b))
        p, v = rng.choice(lists)
        b = copy.deepcopy(body)
        _set(b, p, copy.deepcopy((v * 5)[:5]))
        out.append(("list-of-many", b))
    return out


def _synth(schema):
    """A minimal body for a JSON schema: required properties only, typed placeholders."""

    def gen(s, name, depth):
        if depth > 8 or not isinstance(s, dict):
            return "x"
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return s["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            if key in s and s[key]:
                return gen(s[key][0], name, depth + 1)
        t = s.get("type")
        if isinstance(t, list):
            t = next((x for x in t if x != "null"), "null")
        if t == "object" or "properties" in s:
            props = s.get("properties", {})
            return {k: gen(props.get(k, {}), k, depth + 1) for k in s.get("required", [])}
        if t == "array":
            return [gen(s.get("items", {}), name, depth + 1)] * max(1, s.get("minItems", 1))
        if t == "integer":
            return 1
        if t == "number":
            return 1.5
        if t == "boolean":
            return True
        if t == "null":
            return None
        return f"{name}-1"

    return gen(schema, "value", 0)


def _fm_case(reg, schema, topic, headers, body, variant, seed_id, package, td=False):
    msg = {"id": hashlib.sha256(f"{seed_id}:{variant}:{json.dumps(body, sort_keys=True)}"
                                .encode()).hexdigest()[:32],
           "topic": topic, "headers": headers, "body": body}
    ans = oracle.fm_answer(reg, msg)
    return {"kind": "fedora-messaging", "package": package, "schema": schema,
            "variant": variant, "seed_id": seed_id, "message": msg, "oracle": ans,
            "time_dependent": td}


def _fm_cases(reg, fixtures, seed, sample, rounds):
    seen = set()
    examples = []
    for name in ("fedora-messaging-examples.jsonl", "fedora-messaging-invalid.jsonl"):
        with open(os.path.join(fixtures, name)) as f:
            for line in f:
                examples.append((name, json.loads(line)))
    covered = set()
    for name, ex in examples:
        schema = ex["schema"]
        cls, package = reg.get(schema, (None, ex.get("dist", "?")))
        topic = ex.get("topic") or ex.get("schema_topic") or (cls.topic if cls else "")
        if cls is not None and not topic:
            topic = cls(body={}).topic
        body = ex.get("body")
        headers = ex.get("headers") or (oracle.wire_headers(cls, topic, body) if cls else
                                        {"fedora_messaging_schema": schema})
        headers.setdefault("fedora_messaging_schema", schema)
        key = json.dumps([schema, body], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        variant = "example" if name.endswith("examples.jsonl") else "rejected-example"
        td = bool(ex.get("time_dependent"))
        case = _fm_case(reg, schema, topic, headers, body, variant, ex["id"], package, td)
        yield case
        if cls is None or variant != "example":
            continue
        covered.add(schema)
        rng = _rng(seed, ex["id"])
        kept, rejected = [], []
        for r in range(rounds):
            rng = _rng(seed, f"{ex['id']}:{r}")
            for vname, vbody in _variants(body, case["oracle"], rng):
                k = json.dumps([schema, vbody], sort_keys=True)
                if k in seen:
                    continue
                seen.add(k)
                vh = oracle.wire_headers(cls, topic, vbody)
                c = _fm_case(reg, schema, topic, vh, vbody, vname, ex["id"], package, td)
                (kept if c["oracle"]["valid"] is not False else rejected).append(c)
        if sample:
            rng.shuffle(kept)
            kept = kept[:sample]
        yield from kept
        yield from rejected[:2]
    # Classes without an example: a body synthesised from the schema, if it validates.
    for schema, (cls, package) in sorted(reg.items()):
        if schema in covered or cls.__module__.startswith("fedora_messaging."):
            continue
        try:
            body = _synth(cls.body_schema)
            topic = cls(body=body).topic or schema
            headers = oracle.wire_headers(cls, topic, body)
        except Exception:
            continue
        yield _fm_case(reg, schema, topic, headers, body, "synthesised", schema, package)


def _fedmsg_cases(fixtures, seed, sample):
    with open(os.path.join(fixtures, "fedmsg-examples.jsonl")) as f:
        examples = [json.loads(line) for line in f]
    for ex in examples:
        env = {k: v for k, v in ex.items()
               if k not in ("expected", "computed", "source", "app", "expected_ok",
                            "time_dependent")}
        ans = oracle.fedmsg_answer(env)
        base = {"kind": "fedmsg", "package": "fedmsg_meta_fedora_infrastructure",
                "processor": ans.get("processor"), "app": ex.get("app"),
                "time_dependent": bool(ex.get("time_dependent")), "seed_id": ex.get("msg_id") or str(ex.get("i"))}
        yield dict(base, variant="example", message=env, oracle=ans)
        rng = _rng(seed, base["seed_id"])
        out = []
        users = [u for u in ans.get("usernames", []) if isinstance(u, str) and len(u) >= 3]
        if users:
            m = env
            for u in users:
                m = dict(m, msg=_replace_text(m["msg"], u, rng.choice(USERS)))
            out.append(("other-users", m))
        pkgs = [p for p in ans.get("packages", []) if isinstance(p, str) and len(p) >= 3]
        if pkgs:
            m = env
            for p in pkgs:
                m = dict(m, msg=_replace_text(m["msg"], p, rng.choice(PACKAGES)))
            out.append(("other-packages", m))
        if sample:
            out = out[:sample]
        for vname, m in out:
            m = dict(m, msg_id=f"{base['seed_id']}-{vname}")
            a = oracle.fedmsg_answer(m)
            yield dict(base, variant=vname, message=m, oracle=a)


# fedmsg.meta processors without an example in Fedora's test suites, one envelope each
# (written from the processor's code), so that their catalog files are measured too.
SYNTH_FEDMSG = [
    ("waiverdb", {"topic": "org.fedoraproject.prod.waiverdb.waiver.new",
                  "msg": {"id": 12, "username": "kevin", "result_id": 123,
                          "product_version": "fedora-30", "comment": "flaky test",
                          "waived": True}}),
    ("irc", {"topic": "org.fedoraproject.prod.irc.karma",
             "msg": {"agent": "kevin", "recipient": "ngompa", "total": 42,
                     "channel": "#fedora-devel", "vote": 1, "line": "ngompa++"}}),
    ("irc", {"topic": "org.fedoraproject.prod.irc.karma",
             "msg": {"agent": "sgallagh", "recipient": "zbyszek", "total": 7,
                     "channel": "#fedora-devel", "vote": -1}}),
    ("datanommer", {"topic": "org.fedoraproject.prod.datanommer.wat", "msg": {}}),
]


def _fedmsg_synth():
    for i, (app, env) in enumerate(SYNTH_FEDMSG):
        env = dict(env, msg_id=f"synth-{app}-{i}", i=1, timestamp=1500000000.0,
                   username="apache")
        ans = oracle.fedmsg_answer(env)
        yield {"kind": "fedmsg", "package": "fedmsg_meta_fedora_infrastructure",
               "processor": ans.get("processor"), "app": app, "time_dependent": False,
               "seed_id": env["msg_id"], "variant": "synthesised", "message": env,
               "oracle": ans}


def build(fixtures, seed, sample, fedmsg_sample, rounds=1, fedmsg=True):
    reg = oracle.registry()
    yield from _fm_cases(reg, fixtures, seed, sample, rounds)
    if fedmsg:
        yield from _fedmsg_cases(fixtures, seed, fedmsg_sample)
        yield from _fedmsg_synth()
