"""The CSV files of Intercom's message data export, and their columns, as Intercom documents them.

The fake's own list, written from Intercom's texts and never from the tap's code, so that a test
comparing the two (tests/test_fake_fidelity.py) is where a wrong column shows. Sources:

- receipt: the API reference's "Retrieve the exported data" (versions 2.5 to 2.15,
  https://developers.intercom.com/docs/references/2.6/rest-api/exports-content-stats/downloading-the-data)
  and the OpenAPI `data_export_csv` model (github.com/intercom/Intercom-OpenAPI, descriptions/2.14),
  which lists the first columns and spells `first_dismissal` as `first_dismisall` (real files:
  `first_dismissal`); the `first_*` columns after `first_hard_bounce` and `first_fin_step_reached`
  are those of real files read by public Singer taps and a vendor's published schema of the export.
- open ... overview: the same reference's files, one per statistic, "If a statistic has no records
  then it will not be included"; `answer_combined` adds one column per survey question, headed by
  the question's text.
- goal_success ... fin_step_reached: kinds not in the reference but in real archives, from public
  code that loads them (Singer tap schemas, a warehouse's table list, a script joining the files).
"""

from __future__ import annotations

RECEIPT = """user_id user_external_id company_id company_external_id email name ruleset_id
content_id content_type content_title created_via device ruleset_version_id receipt_id received_at
conversation_id series_id series_title node_id first_reply first_completion first_series_completion
first_series_disengagement first_series_exit first_goal_success first_tour_step_failure
first_tour_step_view first_reaction first_open first_click first_dismissal first_collected_email
first_unsubscribe first_hard_bounce first_soft_bounce first_spam_complaint first_permission_grant
first_button_tap first_screen_view first_webhook_failure first_sms_failure first_whatsapp_failure
first_push_failure first_answer first_keyword_reply first_people_reached_receipt
first_checklist_step_receipt first_checklist_step_open first_checklist_step_click
first_checklist_step_completion first_fin_helpful_answer first_fin_step_reached"""

OVERVIEW = """ruleset_id created_at audience_type content_title content_id content_type series_id
series_title state last_sent_at last_state_change_by last_state_change_at last_edited_by
last_edited_at url receipt_total receipt_unique reply_total reply_unique reply_rate
completion_total completion_unique completion_rate goal_success_total goal_success_unique
goal_success_rate tour_step_failure_total tour_step_failure_unique tour_step_failure_rate
tour_step_view_total tour_step_view_unique reaction_total reaction_unique reaction_rate open_total
open_unique open_rate click_total click_unique click_rate dismissal_total dismissal_unique
dismissal_rate collected_email_total collected_email_unique collected_email_rate unsubscribe_total
unsubscribe_unique unsubscribe_rate hard_bounce_total hard_bounce_unique hard_bounce_rate
spam_complaint_total spam_complaint_unique spam_complaint_rate permission_grant_total
permission_grant_unique permission_grant_rate button_tap_total button_tap_unique button_tap_rate
screen_view_total screen_view_unique screen_view_rate webhook_failure_total webhook_failure_unique
webhook_failure_rate sms_failure_total sms_failure_unique sms_failure_rate whatsapp_failure_total
whatsapp_failure_unique whatsapp_failure_rate push_failure_total push_failure_unique
push_failure_rate answer_total answer_unique answer_rate keyword_reply_total keyword_reply_unique
people_reached_receipt_total people_reached_receipt_unique people_reached_receipt_rate
checklist_step_receipt_total checklist_step_receipt_unique checklist_step_receipt_rate
checklist_step_open_total checklist_step_open_unique checklist_step_open_rate
checklist_step_click_total checklist_step_click_unique checklist_step_click_rate
checklist_step_completion_total checklist_step_completion_unique checklist_step_completion_rate
fin_helpful_answer_total fin_helpful_answer_unique fin_helpful_answer_rate email_failure_total
email_failure_unique email_failure_rate"""

#: Kind -> its columns in the order Intercom writes them (survey questions not included).
KINDS: dict[str, tuple[str, ...]] = {
    kind: tuple(columns.split())
    for kind, columns in {
        "receipt": RECEIPT,
        "open": "receipt_id opened_at",
        "click": "receipt_id clicked_at link_type url",
        "reply": "receipt_id replied_at",
        "completion": "receipt_id completed_at",
        "series_completion": "receipt_id completed_at completion_node_ruleset_id",
        "series_disengagement": "receipt_id disengaged_at disengaged_node_ruleset_id",
        "dismissal": "receipt_id dismissed_at",
        "tour_step_view": "receipt_id step_id viewed_at",
        "answer": "receipt_id answered_at question_id question response_type response",
        "answer_combined": "receipt_id user_id user_external_id name email company_id "
        "company_external_id created_via received_at completed_at",
        "checkpoint": "user_id company_id series_entry_record_id ruleset_id status_code "
        "status_name created_at last_processed_at expires_at times_processed",
        "overview": OVERVIEW,
        # Seen in real archives, not in the reference:
        "goal_success": "receipt_id goal_hit_at",
        "hard_bounce": "receipt_id hard_bounced_at",
        "soft_bounce": "receipt_id soft_bounced_at",
        "unsubscribe": "receipt_id unsubscribed_at",
        "series_exit": "receipt_id exited_at",
        "reaction": "receipt_id reacted_at reaction",
        "tour_step_failure": "receipt_id step_id failed_selector failure_url failed_at",
        "fin_step_reached": "receipt_id involved_at content_id content_type ruleset_id "
        "conversation_id",
    }.items()
}

#: The survey of the reference's `answer_combined` example: one column per question.
SURVEY_QUESTIONS = (
    "How likely are you to recommend us to family and friends?",
    "What's the main reason for your score?",
)

#: A kind no tap knows yet (the receipt file's `first_spam_complaint` names the statistic): the
#: list of kinds is not closed, and a tap must keep the rows of a new one.
INVENTED_KIND = "spam_complaint"
INVENTED_COLUMNS = ("receipt_id", "complained_at", "feedback_loop")


def header(kind: str) -> list[str]:
    """The header the fake writes for a kind (survey questions and the invented kind included)."""
    if kind == INVENTED_KIND:
        return list(INVENTED_COLUMNS)
    columns = list(KINDS[kind])
    return columns + list(SURVEY_QUESTIONS) if kind == "answer_combined" else columns
