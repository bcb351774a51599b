"""A realistic sample store: AutoMem-shaped memories from a fixed seed.

Varied lengths (one clause to a few paragraphs), the canonical types, hierarchical tags,
people/tools/projects that the enrichment can find, and timestamps spread over a year
(the newest within the last days, so temporal links have something to link).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from .memory import MEMORY_TYPES, dump_metadata, tag_prefixes

PEOPLE = [
    "Alice",
    "Bob Chen",
    "Carla Diaz",
    "Dmitri Ivanov",
    "Priya Nair",
    "Tom Becker",
    "Yuki Tanaka",
    "Sam Okafor",
    "Lena Fischer",
    "Marco Rossi",
]
TOOLS = [
    "Docker",
    "PostgreSQL",
    "Redis",
    "Kubernetes",
    "FalkorDB",
    "Qdrant",
    "Grafana",
    "Terraform",
    "SuperWhisper",
    "GitHub Actions",
    "Dagster",
    "spaCy",
    "FastAPI",
    "Sentry",
]
PROJECTS = ["Launchpad", "Atlas", "Beacon", "Orion", "Nimbus", "Hearth", "Quill"]
ORGS = ["Acme Corp", "Globex", "Initech", "the Berlin office", "Umbrella Labs"]
PLACES = ["Berlin", "Lisbon", "Toronto", "Tokyo", "London"]

OPENERS = {
    "Decision": [
        "Decided to move {project} from {tool} to {tool2}.",
        "We agreed with {person} that {project} ships behind a feature flag.",
        "Chose {tool} for the {project} queue after comparing it with {tool2}.",
    ],
    "Pattern": [
        "Every release of {project} slips when {tool} migrations are left to the last day.",
        "Incidents in {project} cluster around {tool} upgrades.",
        "{person} tends to find the root cause by reading {tool} logs first.",
    ],
    "Preference": [
        "{person} prefers {tool} over {tool2} for local development.",
        "I like short pull requests for {project}, ideally under 300 lines.",
        "Prefer dark mode in every editor and terminal.",
    ],
    "Style": [
        "Write commit messages in the imperative mood for {project}.",
        "Code reviews on {project} should lead with the risk, then the nits.",
        "Keep {tool} configuration in the repository, never in the console.",
    ],
    "Habit": [
        "Every Monday I review the {project} backlog with {person}.",
        "Back up {tool} before each schema change.",
        "Start the day by checking {tool} alerts for {project}.",
    ],
    "Insight": [
        "Caching {tool} responses cut {project} latency by {n} percent.",
        "The {project} outage came from a connection pool of {n} shared by two services.",
        "{tool} was slow because the index on the timestamp field was missing.",
    ],
    "Context": [
        "Met with {person} in {place} to plan {project} for the next quarter.",
        "Deployed {tool} with {person} during Project {project} review.",
        "{org} asked for an export of {project} data by Friday.",
    ],
}
FOLLOWUPS = [
    "The numbers were checked twice against the dashboard.",
    "{person} will follow up with {org} next week.",
    "It took {n} minutes to roll back when the health check failed.",
    "We should revisit this after the {project} launch.",
    "Notes are in the shared drive under {project}/planning.",
    "The migration script ran for {n} seconds on the staging copy.",
    "Nobody objected, but {person} wants a written rationale.",
    "This matches what we saw last year in {place}.",
    "Cost went down by roughly {n} percent after the change.",
    "Keep an eye on memory usage of {tool} during peak hours.",
]
TAG_ROOTS = ["project", "team", "infra", "personal", "topic"]


def _fill(template: str, rng: random.Random) -> str:
    tool, tool2 = rng.sample(TOOLS, 2)
    return template.format(
        person=rng.choice(PEOPLE),
        tool=tool,
        tool2=tool2,
        project=rng.choice(PROJECTS),
        org=rng.choice(ORGS),
        place=rng.choice(PLACES),
        n=rng.randint(2, 95),
    )


def sample_memories(
    count: int, seed: int = 7, now: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` memories as AutoMem's store writes them (graph property shape)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    for _ in range(count):
        mtype = rng.choice(MEMORY_TYPES)
        length = min(int(rng.expovariate(0.45)), 12)  # mostly short, a long tail
        sentences = [_fill(rng.choice(OPENERS[mtype]), rng)]
        sentences += [_fill(rng.choice(FOLLOWUPS), rng) for _ in range(length)]
        project = rng.choice(PROJECTS).lower()
        tags = [f"project:{project}"]
        for _ in range(rng.randint(0, 3)):
            root = rng.choice(TAG_ROOTS)
            tags.append(f"{root}/{rng.choice(['alpha', 'beta', 'ops', 'notes', 'review'])}")
        tags = list(dict.fromkeys(tags))
        # Skewed towards recent: half within the last 30 days, some within the last week.
        age = timedelta(seconds=rng.expovariate(1 / (30 * 86400)))
        ts = (now - min(age, timedelta(days=365))).isoformat()
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield {
            "id": mid,
            "content": " ".join(sentences),
            "tags": tags,
            "tag_prefixes": tag_prefixes(tags),
            "importance": round(rng.uniform(0.1, 1.0), 2),
            "timestamp": ts,
            "type": mtype,
            "confidence": round(rng.uniform(0.5, 0.95), 2),
            "t_valid": ts,
            "updated_at": ts,
            "last_accessed": ts,
            "metadata": dump_metadata(
                {
                    "source": rng.choice(["chat", "cli", "import", "api"]),
                    "session": f"s-{rng.randint(1, 400):04d}",
                }
            ),
            "processed": False,
        }
