"""FMN 3's own decisions, standalone: the oracle of `fmn import fmn3` + `fmn match`.

Run with `.venv-fmn3/bin/python` (localstack/bootstrap.sh installs fmn 3.4.0 there):

    fmn3_driver.py DIR

DIR holds `rules-api.json` (the rules as FMN 3's API serves them, all users in one list),
`owners.json` (dist-git's `extras/pagure_owner_alias.json` shape: namespace -> package ->
maintainers, groups written `@group`) and `messages.jsonl` (one `{id, topic, headers, body}`
a line). Prints one JSON line per notification FMN 3 sends: `{"id", "user", "protocol",
"address"}`; then, on stderr, counts and the messages FMN 3 could not load or crashed on.
Writes `DIR/fmn3-facts.jsonl`: per message, the usernames, packages, other artifacts
(`containers/NAME`, …) and agent FMN 3's message class computes, and whether handling it
crashed.

What runs is FMN 3's code as its consumer runs it: `fmn.database.model` objects in an
in-memory SQLite database (aiosqlite, FMN 3's own `sqlite` extra), loaded with the query of
its rules cache (`Rule.select_related()`, enabled rules only); its tracked cache computed by
`TrackedCache._compute_value` (every rule's `prime_cache`); then `Consumer._handle(message,
db)` per message, which checks `is_tracked`, skips deprecated messages, runs every rule's
tracking rule, filters and destinations, and deduplicates. Stand-ins replace only what talks
to the outside world: dist-git (answered from owners.json), FASJSON (every user exists), the
send queue (`_send` collects), the patch download of email bodies (`get_extra`, content not
decision), and the cache invalidation on rule-change messages (the population is fixed).
The rules are inserted with plain INSERTs (as FMN 3's API would have stored them) and read
back by FMN 3's own query. Entry-point lookups of rule and filter implementations are
memoised per (group, name) and the implementation objects per row: they return the same
classes and objects, and uncached they dominate the run time (about 20 ms each).
"""

import asyncio
import functools
import json
import sys
from pathlib import Path

from fedora_messaging import message as fm_message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy_helpers.aio import Base

import fmn.database.model.destination as destination_module
import fmn.database.model.filter as filter_module
import fmn.database.model.tracking_rule as tracking_rule_module
from fmn.backends import PagureRole
from fmn.cache.tracked import TrackedCache
from fmn.consumer.consumer import Consumer
from fmn.database.model import (
    Destination,
    Filter,
    GenerationRule,
    Rule,
    TrackingRule,
    User,
)


class DistGit:
    """dist-git (Pagure) answered from an `extras/pagure_owner_alias.json`-shaped export."""

    def __init__(self, owners):
        self.users = {}
        self.groups = {}
        self.by_user = {}
        self.by_group = {}
        for namespace, packages in owners.items():
            for name, people in packages.items():
                path = f"{namespace}/{name}"
                project = {"name": name, "namespace": namespace, "fullname": path}
                for who in people:
                    if who.startswith("@"):
                        self.groups.setdefault(path, set()).add(who[1:])
                        self.by_group.setdefault(who[1:], []).append(project)
                    else:
                        self.users.setdefault(path, set()).add(who)
                        self.by_user.setdefault(who, []).append(project)

    async def get_project_users(self, *, project_path, roles=PagureRole.USER_ROLES_MAINTAINER):
        return sorted(self.users.get(project_path, ()))

    async def get_project_groups(self, *, project_path, roles=PagureRole.GROUP_ROLES_MAINTAINER):
        return sorted(self.groups.get(project_path, ()))

    async def get_user_projects(self, *, username):
        return list(self.by_user.get(username, ()))

    async def get_group_projects(self, *, name, acl=None):
        return list(self.by_group.get(name, ()))

    async def invalidate_on_message(self, message, db):
        pass


class Fasjson:
    """FASJSON: every user of the population exists (none is disabled)."""

    async def get_user(self, *, username):
        return {"username": username}

    async def invalidate_on_message(self, message, db):
        pass


class Requester:
    """`fmn.rules.requester.Requester` without network proxies."""

    def __init__(self, owners):
        self.distgit = DistGit(owners)
        self.fasjson = Fasjson()

    async def invalidate_on_message(self, message, db):
        pass


class RulesCache:
    """`fmn.cache.rules.RulesCache` with its query run once (the rules do not change)."""

    def __init__(self, rules):
        self.rules = rules

    async def get_rules(self, db):
        return self.rules

    async def invalidate_on_message(self, message, db):
        pass


class TrackedStandIn:
    """`TrackedCache` whose value is computed once by FMN 3's own `_compute_value`."""

    def __init__(self, requester, rules_cache):
        self._requester = requester
        self._rules_cache = rules_cache
        self.value = None

    async def get_value(self, db):
        if self.value is None:
            self.value = await TrackedCache._compute_value(self, db)
        return self.value

    async def invalidate_on_message(self, message, db):
        pass


def memoise_entry_points():
    """Resolve each rule and filter name's entry point once (the same class every time)."""
    for module in (tracking_rule_module, filter_module):
        module.entry_points = functools.cache(module.entry_points)
    # And each row's implementation object once: it is built from the row's name, params
    # and owner only, which do not change during the run.
    for cls in (TrackingRule, Filter):
        original = cls.get_implementation

        def cached(self, requester, _original=original):
            impl = self.__dict__.get("_fmn3_driver_impl")
            if impl is None:
                impl = self.__dict__["_fmn3_driver_impl"] = _original(self, requester)
            return impl

        cls.get_implementation = cached


async def no_extra(message):
    return ""


def rows(rules_api):
    """FMN 3's table rows for the API's rule list, and address -> user."""
    tables = {"users": [], "rules": [], "tracking_rules": [], "generation_rules": [],
              "destinations": [], "filters": []}
    user_ids = {}
    owner_of = {}
    for r in rules_api:
        name = r["user"]["name"]
        if name not in user_ids:
            user_ids[name] = len(user_ids) + 1
            tables["users"].append({"id": user_ids[name], "name": name})
        rule_id = len(tables["rules"]) + 1
        tables["rules"].append({"id": rule_id, "name": r.get("name"),
                                "disabled": bool(r.get("disabled")), "user_id": user_ids[name]})
        t = r["tracking_rule"]
        tables["tracking_rules"].append({"id": rule_id, "rule_id": rule_id, "name": t["name"],
                                         "params": t.get("params")})
        for g in r.get("generation_rules") or []:
            gen_id = len(tables["generation_rules"]) + 1
            tables["generation_rules"].append({"id": gen_id, "rule_id": rule_id})
            for d in g.get("destinations") or []:
                tables["destinations"].append({"generation_rule_id": gen_id,
                                               "protocol": d["protocol"], "address": d["address"]})
                owner_of.setdefault((d["protocol"], d["address"]), name)
            # The API's filters object, one row per key (as FMN 3's API stores them).
            for fname, params in (g.get("filters") or {}).items():
                tables["filters"].append({"generation_rule_id": gen_id, "name": fname,
                                          "params": params})
    return tables, owner_of


async def run(directory: Path):
    rules_api = json.loads((directory / "rules-api.json").read_text())
    owners = json.loads((directory / "owners.json").read_text())
    memoise_entry_points()
    destination_module.get_extra = no_extra

    engine = create_async_engine("sqlite+aiosqlite://")
    tables, owner_of = rows(rules_api)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for model in (User, Rule, TrackingRule, GenerationRule, Destination, Filter):
            table = model.__table__
            if tables[table.name]:
                await conn.execute(table.insert(), tables[table.name])
    session_maker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    sent = []
    facts = []
    counts = {"messages": 0, "unloadable": 0, "crashed": 0}
    async with session_maker() as db:
        result = await db.execute(Rule.select_related().filter_by(disabled=False))
        rules = list(result.scalars())

        requester = Requester(owners)
        rules_cache = RulesCache(rules)
        consumer = Consumer.__new__(Consumer)
        consumer._requester = requester
        consumer._rules_cache = rules_cache
        consumer._tracked_cache = TrackedStandIn(requester, rules_cache)

        async def collect(notification, from_msg):
            content = notification.content
            to = content.headers.To if notification.protocol == "email" else content.to
            sent.append((from_msg.id, notification.protocol, to))

        consumer._send = collect

        for line in (directory / "messages.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            counts["messages"] += 1
            raw = json.loads(line)
            try:
                msg = fm_message.load_message(raw)
                try:
                    msg.validate()
                except FileNotFoundError:
                    # ci-messages reads its schemas from /usr/share/message-schemas/ci, which
                    # no package installs: validity cannot be told, the message goes on.
                    pass
            except Exception as e:  # noqa: BLE001 - reported, the stream goes on
                counts["unloadable"] += 1
                print(f"unloadable {raw.get('id')}: {type(e).__name__}: {e}"[:300], file=sys.stderr)
                continue
            # False when FMN 3's install lacks the schema's package (fedora-messaging then
            # falls back to its base class, which names nobody and nothing).
            fact = {"id": msg.id, "crashed": False,
                    "class_known": type(msg) is not fm_message.Message}
            try:
                fact["usernames"] = sorted({u for u in msg.usernames if u})
                fact["packages"] = sorted({p for p in msg.packages if p})
                fact["others"] = sorted({f"{kind}/{name}" for kind in ("containers", "modules",
                                                                      "flatpaks")
                                        for name in getattr(msg, kind) if name})
                fact["agent"] = msg.agent_name
            except Exception as e:  # noqa: BLE001 - reported with the message
                fact["error"] = f"{type(e).__name__}: {e}"
            facts.append(fact)
            try:
                await consumer._handle(msg, db)
            except Exception as e:  # noqa: BLE001 - an FMN 3 crash is a finding, reported
                counts["crashed"] += 1
                fact["crashed"] = True
                print(f"crashed {msg.id}: {type(e).__name__}: {e}"[:300], file=sys.stderr)
        await db.rollback()
    await engine.dispose()

    out = sys.stdout
    for mid, protocol, address in sent:
        user = owner_of.get((protocol, address), "")
        out.write(
            json.dumps({"id": mid, "user": user, "protocol": protocol, "address": address}) + "\n"
        )
    with open(directory / "fmn3-facts.jsonl", "w") as f:
        for fact in facts:
            f.write(json.dumps(fact) + "\n")
    counts["notifications"] = len(sent)
    print(json.dumps(counts), file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(run(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
