import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TouchClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKETING: _ClassVar[TouchClass]
    TRANSACTIONAL: _ClassVar[TouchClass]
    SERVICE: _ClassVar[TouchClass]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    ALLOW: _ClassVar[Decision]
    DEFER: _ClassVar[Decision]
    BLOCK: _ClassVar[Decision]

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    FREQUENCY_CAP: _ClassVar[Reason]
    CHANNEL_OPTED_OUT: _ClassVar[Reason]
    CATEGORY_OPTED_OUT: _ClassVar[Reason]
    UNSUBSCRIBED: _ClassVar[Reason]
    QUIET_HOURS: _ClassVar[Reason]
    PAUSED: _ClassVar[Reason]
    NEGATIVE_SENTIMENT: _ClassVar[Reason]
    SENTIMENT_PENDING: _ClassVar[Reason]
    STORE_UNAVAILABLE: _ClassVar[Reason]
    LOW_ENGAGEMENT: _ClassVar[Reason]
    UNDELIVERABLE: _ClassVar[Reason]
    CAMPAIGN_FATIGUED: _ClassVar[Reason]
    STORE_RESET: _ClassVar[Reason]
    CONSENT_PENDING: _ClassVar[Reason]
    BEST_TIME: _ClassVar[Reason]

class Timing(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AS_SOON_AS_ALLOWED: _ClassVar[Timing]
    BEST_HOUR: _ClassVar[Timing]

class ReplyLabel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNSCORED: _ClassVar[ReplyLabel]
    NEGATIVE: _ClassVar[ReplyLabel]
    NEUTRAL: _ClassVar[ReplyLabel]
    POSITIVE: _ClassVar[ReplyLabel]

class ReplyAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NONE: _ClassVar[ReplyAction]
    HOLD: _ClassVar[ReplyAction]
    OPT_OUT: _ClassVar[ReplyAction]
    OPT_IN: _ClassVar[ReplyAction]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    OPEN: _ClassVar[TaskStatus]
    CLAIMED: _ClassVar[TaskStatus]
    RESOLVED: _ClassVar[TaskStatus]

class TaskOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_OUTCOME_UNSPECIFIED: _ClassVar[TaskOutcome]
    RECOVERED: _ClassVar[TaskOutcome]
    NO_ACTION: _ClassVar[TaskOutcome]
    ESCALATED: _ClassVar[TaskOutcome]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    P1: _ClassVar[Priority]
    P2: _ClassVar[Priority]
    P3: _ClassVar[Priority]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    SENDER: _ClassVar[Role]
    PREFERENCES: _ClassVar[Role]
    SUPPORT: _ClassVar[Role]
    ADMIN: _ClassVar[Role]
    OPERATOR: _ClassVar[Role]
MARKETING: TouchClass
TRANSACTIONAL: TouchClass
SERVICE: TouchClass
DECISION_UNSPECIFIED: Decision
ALLOW: Decision
DEFER: Decision
BLOCK: Decision
REASON_UNSPECIFIED: Reason
FREQUENCY_CAP: Reason
CHANNEL_OPTED_OUT: Reason
CATEGORY_OPTED_OUT: Reason
UNSUBSCRIBED: Reason
QUIET_HOURS: Reason
PAUSED: Reason
NEGATIVE_SENTIMENT: Reason
SENTIMENT_PENDING: Reason
STORE_UNAVAILABLE: Reason
LOW_ENGAGEMENT: Reason
UNDELIVERABLE: Reason
CAMPAIGN_FATIGUED: Reason
STORE_RESET: Reason
CONSENT_PENDING: Reason
BEST_TIME: Reason
AS_SOON_AS_ALLOWED: Timing
BEST_HOUR: Timing
UNSCORED: ReplyLabel
NEGATIVE: ReplyLabel
NEUTRAL: ReplyLabel
POSITIVE: ReplyLabel
NONE: ReplyAction
HOLD: ReplyAction
OPT_OUT: ReplyAction
OPT_IN: ReplyAction
TASK_STATUS_UNSPECIFIED: TaskStatus
OPEN: TaskStatus
CLAIMED: TaskStatus
RESOLVED: TaskStatus
TASK_OUTCOME_UNSPECIFIED: TaskOutcome
RECOVERED: TaskOutcome
NO_ACTION: TaskOutcome
ESCALATED: TaskOutcome
PRIORITY_UNSPECIFIED: Priority
P1: Priority
P2: Priority
P3: Priority
ROLE_UNSPECIFIED: Role
SENDER: Role
PREFERENCES: Role
SUPPORT: Role
ADMIN: Role
OPERATOR: Role

class CheckTouchRequest(_message.Message):
    __slots__ = ("user_id", "channel", "category", "campaign_id", "touch_id", "touch_class", "dry_run", "send_at", "high_value_user", "strategy_id", "timing", "recipient")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCH_CLASS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    SEND_AT_FIELD_NUMBER: _ClassVar[int]
    HIGH_VALUE_USER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel: str
    category: str
    campaign_id: str
    touch_id: str
    touch_class: TouchClass
    dry_run: bool
    send_at: _timestamp_pb2.Timestamp
    high_value_user: bool
    strategy_id: str
    timing: Timing
    recipient: str
    def __init__(self, user_id: _Optional[str] = ..., channel: _Optional[str] = ..., category: _Optional[str] = ..., campaign_id: _Optional[str] = ..., touch_id: _Optional[str] = ..., touch_class: _Optional[_Union[TouchClass, str]] = ..., dry_run: _Optional[bool] = ..., send_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., high_value_user: _Optional[bool] = ..., strategy_id: _Optional[str] = ..., timing: _Optional[_Union[Timing, str]] = ..., recipient: _Optional[str] = ...) -> None: ...

class CapUsage(_message.Message):
    __slots__ = ("rule_id", "limit", "used", "window", "shadow", "exceeded")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    limit: int
    used: int
    window: _duration_pb2.Duration
    shadow: bool
    exceeded: bool
    def __init__(self, rule_id: _Optional[str] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., shadow: _Optional[bool] = ..., exceeded: _Optional[bool] = ...) -> None: ...

class CheckTouchResponse(_message.Message):
    __slots__ = ("decision", "reasons", "retry_after", "caps", "recorded", "detail", "replayed", "evaluated_at", "tier")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    reasons: _containers.RepeatedScalarFieldContainer[Reason]
    retry_after: _duration_pb2.Duration
    caps: _containers.RepeatedCompositeFieldContainer[CapUsage]
    recorded: bool
    detail: str
    replayed: bool
    evaluated_at: _timestamp_pb2.Timestamp
    tier: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[Reason, str]]] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., caps: _Optional[_Iterable[_Union[CapUsage, _Mapping]]] = ..., recorded: _Optional[bool] = ..., detail: _Optional[str] = ..., replayed: _Optional[bool] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tier: _Optional[str] = ...) -> None: ...

class CheckTouchesRequest(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[CheckTouchRequest]
    def __init__(self, checks: _Optional[_Iterable[_Union[CheckTouchRequest, _Mapping]]] = ...) -> None: ...

class CheckTouchesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckTouchResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckTouchResponse, _Mapping]]] = ...) -> None: ...

class CancelTouchRequest(_message.Message):
    __slots__ = ("user_id", "touch_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    touch_id: str
    def __init__(self, user_id: _Optional[str] = ..., touch_id: _Optional[str] = ...) -> None: ...

class CancelTouchResponse(_message.Message):
    __slots__ = ("cancelled", "detail")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    detail: str
    def __init__(self, cancelled: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class QuietHours(_message.Message):
    __slots__ = ("time_zone", "start", "end")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    start: str
    end: str
    def __init__(self, time_zone: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class Preferences(_message.Message):
    __slots__ = ("user_id", "channels", "categories", "unsubscribed_all", "quiet_hours", "paused_until", "max_marketing_per_week", "version", "updated_at", "channel_scopes", "grid", "pending_confirmation")
    class ChannelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class ChannelScopesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class GridEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_ALL_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    MAX_MARKETING_PER_WEEK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SCOPES_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    PENDING_CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channels: _containers.ScalarMap[str, bool]
    categories: _containers.ScalarMap[str, bool]
    unsubscribed_all: bool
    quiet_hours: QuietHours
    paused_until: _timestamp_pb2.Timestamp
    max_marketing_per_week: int
    version: int
    updated_at: _timestamp_pb2.Timestamp
    channel_scopes: _containers.ScalarMap[str, str]
    grid: _containers.ScalarMap[str, bool]
    pending_confirmation: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., channels: _Optional[_Mapping[str, bool]] = ..., categories: _Optional[_Mapping[str, bool]] = ..., unsubscribed_all: _Optional[bool] = ..., quiet_hours: _Optional[_Union[QuietHours, _Mapping]] = ..., paused_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_marketing_per_week: _Optional[int] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel_scopes: _Optional[_Mapping[str, str]] = ..., grid: _Optional[_Mapping[str, bool]] = ..., pending_confirmation: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class UpdatePreferencesRequest(_message.Message):
    __slots__ = ("preferences", "update_mask", "source", "expected_version", "actor")
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    preferences: Preferences
    update_mask: _field_mask_pb2.FieldMask
    source: str
    expected_version: int
    actor: str
    def __init__(self, preferences: _Optional[_Union[Preferences, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., source: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class ConsentEvent(_message.Message):
    __slots__ = ("at", "source", "actor", "field", "old_value", "new_value", "version", "evidence")
    class EvidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    source: str
    actor: str
    field: str
    old_value: str
    new_value: str
    version: int
    evidence: _containers.ScalarMap[str, str]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., actor: _Optional[str] = ..., field: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., version: _Optional[int] = ..., evidence: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListConsentEventsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConsentEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ConsentEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[ConsentEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TouchRecord(_message.Message):
    __slots__ = ("touch_id", "channel", "category", "campaign_id", "touch_class", "at")
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    TOUCH_CLASS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    touch_id: str
    channel: str
    category: str
    campaign_id: str
    touch_class: TouchClass
    at: _timestamp_pb2.Timestamp
    def __init__(self, touch_id: _Optional[str] = ..., channel: _Optional[str] = ..., category: _Optional[str] = ..., campaign_id: _Optional[str] = ..., touch_class: _Optional[_Union[TouchClass, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("kind", "until", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    until: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, kind: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class GetUserStateRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class EngagementState(_message.Message):
    __slots__ = ("tier", "last_interaction_at", "ignored_in_a_row", "override_tier", "override_until", "undeliverable_channels", "interaction_hours", "interactions")
    TIER_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_AT_FIELD_NUMBER: _ClassVar[int]
    IGNORED_IN_A_ROW_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_TIER_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    UNDELIVERABLE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_HOURS_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    tier: str
    last_interaction_at: _timestamp_pb2.Timestamp
    ignored_in_a_row: int
    override_tier: str
    override_until: _timestamp_pb2.Timestamp
    undeliverable_channels: _containers.RepeatedScalarFieldContainer[str]
    interaction_hours: _containers.RepeatedCompositeFieldContainer[InteractionHour]
    interactions: float
    def __init__(self, tier: _Optional[str] = ..., last_interaction_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ignored_in_a_row: _Optional[int] = ..., override_tier: _Optional[str] = ..., override_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., undeliverable_channels: _Optional[_Iterable[str]] = ..., interaction_hours: _Optional[_Iterable[_Union[InteractionHour, _Mapping]]] = ..., interactions: _Optional[float] = ...) -> None: ...

class InteractionHour(_message.Message):
    __slots__ = ("hour_of_week", "weight")
    HOUR_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    hour_of_week: int
    weight: float
    def __init__(self, hour_of_week: _Optional[int] = ..., weight: _Optional[float] = ...) -> None: ...

class UserState(_message.Message):
    __slots__ = ("engagement", "preferences", "recent_touches", "caps", "holds", "consent_events")
    ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    RECENT_TOUCHES_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    engagement: EngagementState
    preferences: Preferences
    recent_touches: _containers.RepeatedCompositeFieldContainer[TouchRecord]
    caps: _containers.RepeatedCompositeFieldContainer[CapUsage]
    holds: _containers.RepeatedCompositeFieldContainer[Hold]
    consent_events: _containers.RepeatedCompositeFieldContainer[ConsentEvent]
    def __init__(self, engagement: _Optional[_Union[EngagementState, _Mapping]] = ..., preferences: _Optional[_Union[Preferences, _Mapping]] = ..., recent_touches: _Optional[_Iterable[_Union[TouchRecord, _Mapping]]] = ..., caps: _Optional[_Iterable[_Union[CapUsage, _Mapping]]] = ..., holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ..., consent_events: _Optional[_Iterable[_Union[ConsentEvent, _Mapping]]] = ...) -> None: ...

class RecordReplyRequest(_message.Message):
    __slots__ = ("user_id", "channel", "text", "reply_id", "in_reply_to_touch_id", "campaign_id", "received_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel: str
    text: str
    reply_id: str
    in_reply_to_touch_id: str
    campaign_id: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., channel: _Optional[str] = ..., text: _Optional[str] = ..., reply_id: _Optional[str] = ..., in_reply_to_touch_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordReplyResponse(_message.Message):
    __slots__ = ("label", "negative_score", "action", "task_id", "detail", "campaign_id", "replayed")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_SCORE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    label: ReplyLabel
    negative_score: float
    action: ReplyAction
    task_id: str
    detail: str
    campaign_id: str
    replayed: bool
    def __init__(self, label: _Optional[_Union[ReplyLabel, str]] = ..., negative_score: _Optional[float] = ..., action: _Optional[_Union[ReplyAction, str]] = ..., task_id: _Optional[str] = ..., detail: _Optional[str] = ..., campaign_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class TaskReply(_message.Message):
    __slots__ = ("reply_id", "text", "at", "negative_score")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_SCORE_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    text: str
    at: _timestamp_pb2.Timestamp
    negative_score: float
    def __init__(self, reply_id: _Optional[str] = ..., text: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., negative_score: _Optional[float] = ...) -> None: ...

class RecoveryTask(_message.Message):
    __slots__ = ("task_id", "user_id", "channel", "replies", "campaign_id", "priority", "created_at", "due_at", "status", "assignee", "outcome", "note", "replies_omitted", "kind", "summary", "assignee_key_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    REPLIES_OMITTED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    user_id: str
    channel: str
    replies: _containers.RepeatedCompositeFieldContainer[TaskReply]
    campaign_id: str
    priority: Priority
    created_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    status: TaskStatus
    assignee: str
    outcome: TaskOutcome
    note: str
    replies_omitted: int
    kind: str
    summary: str
    assignee_key_id: str
    def __init__(self, task_id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[str] = ..., replies: _Optional[_Iterable[_Union[TaskReply, _Mapping]]] = ..., campaign_id: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., assignee: _Optional[str] = ..., outcome: _Optional[_Union[TaskOutcome, str]] = ..., note: _Optional[str] = ..., replies_omitted: _Optional[int] = ..., kind: _Optional[str] = ..., summary: _Optional[str] = ..., assignee_key_id: _Optional[str] = ...) -> None: ...

class WatchRecoveryTasksRequest(_message.Message):
    __slots__ = ("consumer",)
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    def __init__(self, consumer: _Optional[str] = ...) -> None: ...

class ListRecoveryTasksRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: TaskStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[TaskStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecoveryTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[RecoveryTask]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[RecoveryTask, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ClaimRecoveryTaskRequest(_message.Message):
    __slots__ = ("task_id", "agent")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent: str
    def __init__(self, task_id: _Optional[str] = ..., agent: _Optional[str] = ...) -> None: ...

class ResolveRecoveryTaskRequest(_message.Message):
    __slots__ = ("task_id", "agent", "outcome", "note", "lift_hold")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LIFT_HOLD_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent: str
    outcome: TaskOutcome
    note: str
    lift_hold: bool
    def __init__(self, task_id: _Optional[str] = ..., agent: _Optional[str] = ..., outcome: _Optional[_Union[TaskOutcome, str]] = ..., note: _Optional[str] = ..., lift_hold: _Optional[bool] = ...) -> None: ...

class ExportUserDataRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ExportUserDataResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: str
    def __init__(self, document: _Optional[str] = ...) -> None: ...

class EraseUserRequest(_message.Message):
    __slots__ = ("user_id", "actor", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    actor: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EraseUserResponse(_message.Message):
    __slots__ = ("keys_removed", "tasks_redacted", "channels_suppressed", "categories_suppressed", "unsubscribed_all")
    KEYS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    TASKS_REDACTED_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_ALL_FIELD_NUMBER: _ClassVar[int]
    keys_removed: int
    tasks_redacted: int
    channels_suppressed: _containers.RepeatedScalarFieldContainer[str]
    categories_suppressed: _containers.RepeatedScalarFieldContainer[str]
    unsubscribed_all: bool
    def __init__(self, keys_removed: _Optional[int] = ..., tasks_redacted: _Optional[int] = ..., channels_suppressed: _Optional[_Iterable[str]] = ..., categories_suppressed: _Optional[_Iterable[str]] = ..., unsubscribed_all: _Optional[bool] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "tenant", "roles", "name", "created_at", "last_used_at", "revoked_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    tenant: str
    roles: _containers.RepeatedScalarFieldContainer[Role]
    name: str
    created_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., tenant: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[Role, str]]] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("tenant", "roles", "name")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    roles: _containers.RepeatedScalarFieldContainer[Role]
    name: str
    def __init__(self, tenant: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[Role, str]]] = ..., name: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("tenant", "key_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    key_id: str
    def __init__(self, tenant: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class ApplyPolicyRequest(_message.Message):
    __slots__ = ("tenant", "policy_yaml", "actor")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_YAML_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    policy_yaml: str
    actor: str
    def __init__(self, tenant: _Optional[str] = ..., policy_yaml: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class PolicyInForce(_message.Message):
    __slots__ = ("tenant", "policy_yaml", "source", "version", "applied_at", "applied_by")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_YAML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    policy_yaml: str
    source: str
    version: int
    applied_at: _timestamp_pb2.Timestamp
    applied_by: str
    def __init__(self, tenant: _Optional[str] = ..., policy_yaml: _Optional[str] = ..., source: _Optional[str] = ..., version: _Optional[int] = ..., applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by: _Optional[str] = ...) -> None: ...

class EngagementEvent(_message.Message):
    __slots__ = ("touch_id", "user_id", "event", "occurred_at", "detail", "provider", "channel")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[EngagementEvent.Kind]
        DELIVERED: _ClassVar[EngagementEvent.Kind]
        OPENED: _ClassVar[EngagementEvent.Kind]
        CLICKED: _ClassVar[EngagementEvent.Kind]
        CONVERTED: _ClassVar[EngagementEvent.Kind]
        BOUNCED: _ClassVar[EngagementEvent.Kind]
        SPAM_COMPLAINT: _ClassVar[EngagementEvent.Kind]
        UNSUBSCRIBED: _ClassVar[EngagementEvent.Kind]
    KIND_UNSPECIFIED: EngagementEvent.Kind
    DELIVERED: EngagementEvent.Kind
    OPENED: EngagementEvent.Kind
    CLICKED: EngagementEvent.Kind
    CONVERTED: EngagementEvent.Kind
    BOUNCED: EngagementEvent.Kind
    SPAM_COMPLAINT: EngagementEvent.Kind
    UNSUBSCRIBED: EngagementEvent.Kind
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    touch_id: str
    user_id: str
    event: EngagementEvent.Kind
    occurred_at: _timestamp_pb2.Timestamp
    detail: str
    provider: str
    channel: str
    def __init__(self, touch_id: _Optional[str] = ..., user_id: _Optional[str] = ..., event: _Optional[_Union[EngagementEvent.Kind, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., provider: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class RecordEngagementResponse(_message.Message):
    __slots__ = ("replayed", "touch_known", "campaign_id", "channel", "action", "task_id")
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    TOUCH_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    replayed: bool
    touch_known: bool
    campaign_id: str
    channel: str
    action: str
    task_id: str
    def __init__(self, replayed: _Optional[bool] = ..., touch_known: _Optional[bool] = ..., campaign_id: _Optional[str] = ..., channel: _Optional[str] = ..., action: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class RecordEngagementsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[EngagementEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[EngagementEvent, _Mapping]]] = ...) -> None: ...

class RecordEngagementsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordEngagementResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[RecordEngagementResponse, _Mapping]]] = ...) -> None: ...

class SetEngagementTierRequest(_message.Message):
    __slots__ = ("user_id", "tier", "until", "reason", "actor")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    tier: str
    until: _timestamp_pb2.Timestamp
    reason: str
    actor: str
    def __init__(self, user_id: _Optional[str] = ..., tier: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class HealthFigures(_message.Message):
    __slots__ = ("touches", "deliveries", "opens", "clicks", "conversions", "replies", "negative_replies", "opt_outs", "list_unsubscribes", "spam_complaints", "bounces", "ignored", "judged", "tasks_opened", "tasks_resolved", "tasks_resolved_in_sla", "tasks_recovered")
    TOUCHES_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    OPENS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_REPLIES_FIELD_NUMBER: _ClassVar[int]
    OPT_OUTS_FIELD_NUMBER: _ClassVar[int]
    LIST_UNSUBSCRIBES_FIELD_NUMBER: _ClassVar[int]
    SPAM_COMPLAINTS_FIELD_NUMBER: _ClassVar[int]
    BOUNCES_FIELD_NUMBER: _ClassVar[int]
    IGNORED_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    TASKS_OPENED_FIELD_NUMBER: _ClassVar[int]
    TASKS_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    TASKS_RESOLVED_IN_SLA_FIELD_NUMBER: _ClassVar[int]
    TASKS_RECOVERED_FIELD_NUMBER: _ClassVar[int]
    touches: int
    deliveries: int
    opens: int
    clicks: int
    conversions: int
    replies: int
    negative_replies: int
    opt_outs: int
    list_unsubscribes: int
    spam_complaints: int
    bounces: int
    ignored: int
    judged: int
    tasks_opened: int
    tasks_resolved: int
    tasks_resolved_in_sla: int
    tasks_recovered: int
    def __init__(self, touches: _Optional[int] = ..., deliveries: _Optional[int] = ..., opens: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ..., replies: _Optional[int] = ..., negative_replies: _Optional[int] = ..., opt_outs: _Optional[int] = ..., list_unsubscribes: _Optional[int] = ..., spam_complaints: _Optional[int] = ..., bounces: _Optional[int] = ..., ignored: _Optional[int] = ..., judged: _Optional[int] = ..., tasks_opened: _Optional[int] = ..., tasks_resolved: _Optional[int] = ..., tasks_resolved_in_sla: _Optional[int] = ..., tasks_recovered: _Optional[int] = ...) -> None: ...

class HealthRates(_message.Message):
    __slots__ = ("complaint_rate", "opt_out_rate", "negative_reply_rate", "ignore_rate")
    COMPLAINT_RATE_FIELD_NUMBER: _ClassVar[int]
    OPT_OUT_RATE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_REPLY_RATE_FIELD_NUMBER: _ClassVar[int]
    IGNORE_RATE_FIELD_NUMBER: _ClassVar[int]
    complaint_rate: float
    opt_out_rate: float
    negative_reply_rate: float
    ignore_rate: float
    def __init__(self, complaint_rate: _Optional[float] = ..., opt_out_rate: _Optional[float] = ..., negative_reply_rate: _Optional[float] = ..., ignore_rate: _Optional[float] = ...) -> None: ...

class CampaignHealth(_message.Message):
    __slots__ = ("campaign_id", "strategy_id", "window", "figures", "rates", "fatigue_index", "previous_fatigue_index", "trend", "brake", "too_few_touches", "ranking_index")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    FATIGUE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FATIGUE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    BRAKE_FIELD_NUMBER: _ClassVar[int]
    TOO_FEW_TOUCHES_FIELD_NUMBER: _ClassVar[int]
    RANKING_INDEX_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    strategy_id: str
    window: str
    figures: HealthFigures
    rates: HealthRates
    fatigue_index: float
    previous_fatigue_index: float
    trend: float
    brake: Brake
    too_few_touches: bool
    ranking_index: float
    def __init__(self, campaign_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., window: _Optional[str] = ..., figures: _Optional[_Union[HealthFigures, _Mapping]] = ..., rates: _Optional[_Union[HealthRates, _Mapping]] = ..., fatigue_index: _Optional[float] = ..., previous_fatigue_index: _Optional[float] = ..., trend: _Optional[float] = ..., brake: _Optional[_Union[Brake, _Mapping]] = ..., too_few_touches: _Optional[bool] = ..., ranking_index: _Optional[float] = ...) -> None: ...

class Brake(_message.Message):
    __slots__ = ("rule", "braked_at", "until", "shadow", "signal", "value")
    RULE_FIELD_NUMBER: _ClassVar[int]
    BRAKED_AT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    braked_at: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    shadow: bool
    signal: str
    value: float
    def __init__(self, rule: _Optional[str] = ..., braked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shadow: _Optional[bool] = ..., signal: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ResumeCampaignRequest(_message.Message):
    __slots__ = ("campaign_id", "strategy_id", "actor", "reason")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    strategy_id: str
    actor: str
    reason: str
    def __init__(self, campaign_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeCampaignResponse(_message.Message):
    __slots__ = ("resumed",)
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    resumed: bool
    def __init__(self, resumed: _Optional[bool] = ...) -> None: ...

class GetCampaignHealthRequest(_message.Message):
    __slots__ = ("campaign_id", "strategy_id", "window")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    strategy_id: str
    window: str
    def __init__(self, campaign_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., window: _Optional[str] = ...) -> None: ...

class ListCampaignHealthRequest(_message.Message):
    __slots__ = ("strategies", "window", "page_size", "page_token")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategies: bool
    window: str
    page_size: int
    page_token: str
    def __init__(self, strategies: _Optional[bool] = ..., window: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignHealthResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CampaignHealth]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[CampaignHealth, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetExperienceHealthRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: str
    def __init__(self, window: _Optional[str] = ...) -> None: ...

class ExperienceHealth(_message.Message):
    __slots__ = ("window", "figures", "rates", "fatigue_index", "resolved_in_sla_share", "recovered_share", "too_few_touches")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    FATIGUE_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_IN_SLA_SHARE_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_SHARE_FIELD_NUMBER: _ClassVar[int]
    TOO_FEW_TOUCHES_FIELD_NUMBER: _ClassVar[int]
    window: str
    figures: HealthFigures
    rates: HealthRates
    fatigue_index: float
    resolved_in_sla_share: float
    recovered_share: float
    too_few_touches: bool
    def __init__(self, window: _Optional[str] = ..., figures: _Optional[_Union[HealthFigures, _Mapping]] = ..., rates: _Optional[_Union[HealthRates, _Mapping]] = ..., fatigue_index: _Optional[float] = ..., resolved_in_sla_share: _Optional[float] = ..., recovered_share: _Optional[float] = ..., too_few_touches: _Optional[bool] = ...) -> None: ...

class CreatePreferenceLinkRequest(_message.Message):
    __slots__ = ("user_id", "ttl", "locale", "topic", "campaign_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    ttl: _duration_pb2.Duration
    locale: str
    topic: str
    campaign_id: str
    def __init__(self, user_id: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., locale: _Optional[str] = ..., topic: _Optional[str] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class CreateConfirmationLinkRequest(_message.Message):
    __slots__ = ("user_id", "channel", "ttl", "locale")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel: str
    ttl: _duration_pb2.Duration
    locale: str
    def __init__(self, user_id: _Optional[str] = ..., channel: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., locale: _Optional[str] = ...) -> None: ...

class ConfirmationLink(_message.Message):
    __slots__ = ("url", "expires_at")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    url: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreferenceLink(_message.Message):
    __slots__ = ("url", "list_unsubscribe_url", "list_unsubscribe_post", "expires_at")
    URL_FIELD_NUMBER: _ClassVar[int]
    LIST_UNSUBSCRIBE_URL_FIELD_NUMBER: _ClassVar[int]
    LIST_UNSUBSCRIBE_POST_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    url: str
    list_unsubscribe_url: str
    list_unsubscribe_post: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., list_unsubscribe_url: _Optional[str] = ..., list_unsubscribe_post: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetHookSecretRequest(_message.Message):
    __slots__ = ("tenant", "provider", "name", "value")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    provider: str
    name: str
    value: str
    def __init__(self, tenant: _Optional[str] = ..., provider: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ListHookReceiversRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class HookReceiver(_message.Message):
    __slots__ = ("provider", "url", "secrets")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    url: str
    secrets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider: _Optional[str] = ..., url: _Optional[str] = ..., secrets: _Optional[_Iterable[str]] = ...) -> None: ...

class HookReceivers(_message.Message):
    __slots__ = ("tenant", "receivers")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    receivers: _containers.RepeatedCompositeFieldContainer[HookReceiver]
    def __init__(self, tenant: _Optional[str] = ..., receivers: _Optional[_Iterable[_Union[HookReceiver, _Mapping]]] = ...) -> None: ...

class AddWebhookRequest(_message.Message):
    __slots__ = ("tenant", "url", "events", "format", "language", "robot_secret")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ROBOT_SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    format: str
    language: str
    robot_secret: str
    def __init__(self, tenant: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., format: _Optional[str] = ..., language: _Optional[str] = ..., robot_secret: _Optional[str] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class WebhookRequest(_message.Message):
    __slots__ = ("tenant", "endpoint_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    endpoint_id: str
    def __init__(self, tenant: _Optional[str] = ..., endpoint_id: _Optional[str] = ...) -> None: ...

class WebhookSecret(_message.Message):
    __slots__ = ("endpoint", "secret")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    endpoint: Webhook
    secret: str
    def __init__(self, endpoint: _Optional[_Union[Webhook, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("endpoint_id", "url", "events", "created_at", "delivered", "failed", "last_error", "failing_since", "disabled_at", "format", "language")
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    delivered: int
    failed: int
    last_error: str
    failing_since: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    format: str
    language: str
    def __init__(self, endpoint_id: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ..., last_error: _Optional[str] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., format: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class Webhooks(_message.Message):
    __slots__ = ("tenant", "endpoints")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    endpoints: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, tenant: _Optional[str] = ..., endpoints: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class WebhookReplay(_message.Message):
    __slots__ = ("delivered", "failing", "gone")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILING_FIELD_NUMBER: _ClassVar[int]
    GONE_FIELD_NUMBER: _ClassVar[int]
    delivered: int
    failing: int
    gone: int
    def __init__(self, delivered: _Optional[int] = ..., failing: _Optional[int] = ..., gone: _Optional[int] = ...) -> None: ...

class WebhookTest(_message.Message):
    __slots__ = ("status", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: int
    error: str
    def __init__(self, status: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class SetContactPointsRequest(_message.Message):
    __slots__ = ("user_id", "addresses")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class SetContactPointsResponse(_message.Message):
    __slots__ = ("kept",)
    KEPT_FIELD_NUMBER: _ClassVar[int]
    kept: int
    def __init__(self, kept: _Optional[int] = ...) -> None: ...

class RotateLinkSecretRequest(_message.Message):
    __slots__ = ("tenant", "retire_previous")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RETIRE_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    retire_previous: bool
    def __init__(self, tenant: _Optional[str] = ..., retire_previous: _Optional[bool] = ...) -> None: ...

class RotateLinkSecretResponse(_message.Message):
    __slots__ = ("secret_id", "accepted_ids")
    SECRET_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_IDS_FIELD_NUMBER: _ClassVar[int]
    secret_id: str
    accepted_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, secret_id: _Optional[str] = ..., accepted_ids: _Optional[_Iterable[str]] = ...) -> None: ...
