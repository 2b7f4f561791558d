"""SQLAlchemy models of Açık Kapı. This module only re-exports; one entity per module."""

from models.attachment import Attachment
from models.audit_event import AuditAction, AuditEvent
from models.base import Base, UTCDateTime
from models.call_attempt import CallAttempt
from models.call_note import CallNote
from models.call_record import CallRecord
from models.callback_task import CallbackTask
from models.campaign import Campaign
from models.campaign_target import CampaignTarget
from models.citizen import Citizen
from models.citizen_phone import CitizenPhone
from models.department import Department
from models.do_not_call_number import DoNotCallNumber
from models.enums import (
    OPEN_STATUSES,
    AttachmentKind,
    AttemptStatus,
    CallbackReason,
    CallbackStatus,
    CallOutcome,
    CampaignKind,
    CampaignStatus,
    CampaignTargetSource,
    CampaignTargetStatus,
    Channel,
    Language,
    LegalClock,
    NotificationChannel,
    OutboxStatus,
    PhoneType,
    Role,
    SlaUnit,
    TicketKind,
    TicketStatus,
    TimelineAction,
)
from models.escalation_policy import EscalationPolicy
from models.external_institution import ExternalInstitution
from models.holiday import Holiday
from models.household import Household
from models.mayor_call_list import MayorCallEntry, MayorCallList
from models.mayor_enums import MayorCallResult
from models.neighbourhood import Neighbourhood
from models.notification import Notification
from models.possible_citizen_match import PossibleCitizenMatch
from models.staff_user import StaffUser
from models.survey import SurveyAnswer, SurveyQuestion
from models.survey_follow_up import SurveyFollowUp
from models.survey_sms_request import SurveySmsRequest
from models.ticket import Ticket
from models.ticket_contact import TicketContact
from models.ticket_event import AppendOnlyError, TicketEvent
from models.ticket_group import TicketGroup
from models.ticket_type import TicketType

__all__ = [
    "OPEN_STATUSES",
    "AppendOnlyError",
    "Attachment",
    "AttachmentKind",
    "AttemptStatus",
    "AuditAction",
    "AuditEvent",
    "Base",
    "CallAttempt",
    "CallNote",
    "CallOutcome",
    "CallRecord",
    "CallbackReason",
    "CallbackStatus",
    "CallbackTask",
    "Campaign",
    "CampaignKind",
    "CampaignStatus",
    "CampaignTarget",
    "CampaignTargetSource",
    "CampaignTargetStatus",
    "Channel",
    "Citizen",
    "CitizenPhone",
    "Department",
    "DoNotCallNumber",
    "EscalationPolicy",
    "ExternalInstitution",
    "Holiday",
    "Household",
    "Language",
    "LegalClock",
    "MayorCallEntry",
    "MayorCallList",
    "MayorCallResult",
    "Neighbourhood",
    "Notification",
    "NotificationChannel",
    "OutboxStatus",
    "PhoneType",
    "PossibleCitizenMatch",
    "Role",
    "SlaUnit",
    "StaffUser",
    "SurveyAnswer",
    "SurveyFollowUp",
    "SurveyQuestion",
    "SurveySmsRequest",
    "Ticket",
    "TicketContact",
    "TicketEvent",
    "TicketGroup",
    "TicketKind",
    "TicketStatus",
    "TicketType",
    "TimelineAction",
    "UTCDateTime",
]
