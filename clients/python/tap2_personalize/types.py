"""Shapes of the API's JSON bodies (clients/openapi.json is the source of truth)."""

from typing import Any, Dict, List, Literal, Optional, TypedDict

DeviceType = Literal["mobile", "desktop", "tablet"]


class RankedMethod(TypedDict):
    method_id: str
    confidence: float
    score: float


class _MethodsResponseRequired(TypedDict):
    methods: List[RankedMethod]
    personalized: bool
    decision_id: str
    context: Dict[str, Any]


class MethodsResponse(_MethodsResponseRequired, total=False):
    #: no_history | personalization_disabled | holdout | customer_deleted | guest | degraded
    fallback_reason: str


class OffersResponse(TypedDict, total=False):
    offers: List[Dict[str, Any]]
    personalized: bool
    fallback_reason: str


class FeedbackEvent(TypedDict, total=False):
    customer_id: str  # required
    method_id: str  # required
    merchant_id: str
    amount: int
    currency: str
    device_type: DeviceType
    location_country: str
    event_id: str
    decision_id: str
    offer_id: str
    occurred_at: str


class Preferences(TypedDict):
    customer_id: str
    merchant_id: str
    default_method: Optional[str]
    favorite_methods: List[str]
    excluded_methods: List[str]
    personalization_enabled: bool
    cross_merchant_consent: bool
    created_at: Optional[str]
    updated_at: Optional[str]
    last_used_at: Optional[str]


class PreferencesUpdated(TypedDict):
    updated: bool
    preferences: Preferences


class _ConsentEntryRequired(TypedDict):
    consent_type: Literal["personalization", "cross_merchant"]
    action: Literal["granted", "revoked"]
    merchant_id: str
    timestamp: str


class ConsentEntry(_ConsentEntryRequired, total=False):
    #: only on a change the customer did not make: "retention" (the consent lapsed with the profile),
    #: "erasure" (the customer's data was purged after a deletion's grace period)
    reason: Literal["retention", "erasure"]


class ConsentLog(TypedDict):
    entries: List[ConsentEntry]
    truncated: bool


class FeedbackSent(TypedDict):
    event_id: str


class BatchAccepted(TypedDict):
    accepted: int
    idempotency_key: str


class DeletionAccepted(TypedDict):
    customer_id: str
    status: Literal["pending_deletion"]
    purge_after: str


class CustomerRestored(TypedDict):
    customer_id: str
    status: Literal["active"]


class CheckoutSession(TypedDict):
    id: str
    client_secret: str
    merchant_id: str
    customer_id: str
    amount: Optional[int]
    currency: Optional[str]
    expires_at: str
