"""The GraphQL documents the gateway sends to the Dagster webserver.

Every union answer asks for `__typename` and, through the `Error` interface every Dagster
error type implements, for its `message`: the gateway maps the type name to an HTTP answer.
"""

RUN_FIELDS = "runId jobName status creationTime startTime endTime tags { key value } runConfig"

PING = "query Ping { version }"

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""

RUN = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on Error {{ message }}
  }}
}}"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}"""

RUNS = f"""
query Runs($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on Error {{ message }}
  }}
}}"""

# The structured events of a run: the summarizing step's Output metadata (the summary as a
# JSON entry) and the failure events.
RUN_EVENTS = """
query RunEvents($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on ExecutionStepOutputEvent {
          stepKey
          metadataEntries { label ... on JsonMetadataEntry { jsonString } }
        }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
    ... on Error { message }
  }
}"""

# A run's log messages, for its progress events (automem_pipelines.domain.progress): the
# other events answer only their type name. Read from a cursor: each poll reads what is new.
RUN_PROGRESS = """
query RunProgress($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on LogMessageEvent { message stepKey timestamp }
      }
    }
    ... on Error { message }
  }
}"""

SCHEDULER = """
query Scheduler($sensor: SensorSelector!, $daemon: String!, $queued: RunsFilter,
                $started: RunsFilter, $limit: Int) {
  sensorOrError(sensorSelector: $sensor) {
    __typename
    ... on Sensor { sensorState { status } }
  }
  instance {
    daemonHealth { sensor: daemonStatus(daemonType: $daemon) { lastHeartbeatTime } }
  }
  queued: runsOrError(filter: $queued, limit: $limit) {
    __typename
    ... on Runs { results { runConfig } }
    ... on Error { message }
  }
  started: runsOrError(filter: $started, limit: $limit) {
    __typename
    ... on Runs { results { runConfig } }
    ... on Error { message }
  }
}"""

# The latest executions of the drift checks on the collection asset (one aliased field per
# check; a few of each, as the latest may still be running or have died without a result).
CHECK_EXECUTION_FIELDS = """
runId
status
timestamp
evaluation {
  success
  severity
  timestamp
  metadataEntries {
    __typename
    label
    ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue }
    ... on BoolMetadataEntry { boolValue }
    ... on TextMetadataEntry { text }
    ... on JsonMetadataEntry { jsonString }
  }
}"""


def check_executions(check_names: tuple[str, ...] | list[str], limit: int) -> str:
    fields = "\n".join(
        f'  {name}: assetCheckExecutions(assetKey: $assetKey, checkName: "{name}", '
        f"limit: {int(limit)}) {{{CHECK_EXECUTION_FIELDS}}}"
        for name in check_names
    )
    return f"query CheckExecutions($assetKey: AssetKeyInput!) {{\n{fields}\n}}"
