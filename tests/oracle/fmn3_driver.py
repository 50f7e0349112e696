"""FMN 3's own decisions, standalone: the oracle of `fmn import fmn3` + `fmn match`.

Run with `.venv-fmn3/bin/python` (localstack/bootstrap.sh installs fmn 3.4.0 there):

    fmn3_driver.py DIR

DIR holds `rules-api.json` (the rules as FMN 3's API serves them, all users in one list),
`owners.json` (dist-git's `extras/pagure_owner_alias.json` shape: namespace -> package ->
maintainers, groups written `@group`) and `messages.jsonl` (one `{id, topic, headers, body}`
a line). Prints one JSON line per notification FMN 3 sends: `{"id", "user", "protocol",
"address"}`; then, on stderr, counts and the messages FMN 3 could not load or crashed on.

What runs is FMN 3's code as its consumer runs it: `fmn.database.model` objects in an
in-memory SQLite database (aiosqlite, FMN 3's own `sqlite` extra), loaded with the query of
its rules cache (`Rule.select_related()`, enabled rules only); its tracked cache computed by
`TrackedCache._compute_value` (every rule's `prime_cache`); then `Consumer._handle(message,
db)` per message, which checks `is_tracked`, skips deprecated messages, runs every rule's
tracking rule, filters and destinations, and deduplicates. Stand-ins replace only what talks
to the outside world: dist-git (answered from owners.json), FASJSON (every user exists), the
send queue (`_send` collects), the patch download of email bodies (`get_extra`, content not
decision), and the cache invalidation on rule-change messages (the population is fixed).
Entry-point lookups of rule and filter implementations are memoised per object: they return
the same classes, and without it they dominate the run time.
"""

import asyncio
import json
import sys
from pathlib import Path

from fedora_messaging import message as fm_message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy_helpers.aio import Base

import fmn.database.model.destination as destination_module
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


def memoise_implementations():
    """Resolve each rule's and filter's implementation once (same class, same params)."""
    for cls in (TrackingRule, Filter):
        original = cls.get_implementation

        def cached(self, requester, _original=original):
            impl = self.__dict__.get("_fmn3_driver_impl")
            if impl is None:
                impl = _original(self, requester)
                self.__dict__["_fmn3_driver_impl"] = impl
            return impl

        cls.get_implementation = cached


async def no_extra(message):
    return ""


def populate(db, rules_api):
    """FMN 3's model objects for the API's rule list; returns address -> user."""
    users = {}
    owner_of = {}
    for r in rules_api:
        name = r["user"]["name"]
        user = users.get(name)
        if user is None:
            user = users[name] = User(name=name)
            db.add(user)
        rule = Rule(name=r.get("name"), disabled=bool(r.get("disabled")), user=user)
        t = r["tracking_rule"]
        rule.tracking_rule = TrackingRule(name=t["name"], params=t.get("params"))
        for g in r.get("generation_rules") or []:
            gen = GenerationRule()
            for d in g.get("destinations") or []:
                gen.destinations.append(Destination(protocol=d["protocol"], address=d["address"]))
                owner_of.setdefault((d["protocol"], d["address"]), name)
            # The API's filters object, one Filter row per key (as FMN 3's API stores them).
            for fname, params in (g.get("filters") or {}).items():
                gen.filters.append(Filter(name=fname, params=params))
            rule.generation_rules.append(gen)
        db.add(rule)
    return owner_of


async def run(directory: Path):
    rules_api = json.loads((directory / "rules-api.json").read_text())
    owners = json.loads((directory / "owners.json").read_text())
    memoise_implementations()
    destination_module.get_extra = no_extra

    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    session_maker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    sent = []
    counts = {"messages": 0, "unloadable": 0, "crashed": 0}
    async with session_maker() as db:
        owner_of = populate(db, rules_api)
        await db.commit()
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
            try:
                await consumer._handle(msg, db)
            except Exception as e:  # noqa: BLE001 - an FMN 3 crash is a finding, reported
                counts["crashed"] += 1
                print(f"crashed {msg.id}: {type(e).__name__}: {e}"[:300], file=sys.stderr)
        await db.rollback()
    await engine.dispose()

    out = sys.stdout
    for mid, protocol, address in sent:
        user = owner_of.get((protocol, address), "")
        out.write(
            json.dumps({"id": mid, "user": user, "protocol": protocol, "address": address}) + "\n"
        )
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
