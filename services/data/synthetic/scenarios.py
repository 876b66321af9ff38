"""Built-in scenario types (seed 000) and the data_type names that select them (seed 002).

Each scenario is written in the same specification format users give for "custom" (see
templates.py), so built-ins and custom templates go through one compiler and one generator.
Every output has a ``subject`` slot (the words that name what it is about); the shared templates
use it, which is what makes harder examples overlap: only the subject tells the outputs apart.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.synthetic.templates import CompiledScenario, compile_scenario

_OPENERS = ["hi,", "hello,", "hey there,", "good morning,", "quick question:", "urgent:", "hi team,",
            "sorry to bother you,"]
_CLOSERS = ["thanks", "thank you!", "please help", "asap please", "any update?", "cheers",
            "thanks in advance", "let me know"]
_SYNONYMS = {
    "want": ["would like", "need"], "please": ["pls", "kindly"], "help": ["assistance", "support"],
    "can't": ["cannot", "am unable to"], "why": ["how come"], "quick": ["short", "fast"],
    "show": ["display", "give me"], "make": ["create", "produce"], "write": ["draft", "compose"],
    "slow": ["sluggish", "laggy"], "fix": ["repair", "correct"], "find": ["locate", "identify"],
}

CUSTOMER_SUPPORT: dict[str, Any] = {
    "description": "Customer messages routed to a support intent (billing, technical, account, shipping).",
    "slots": {
        "product": ["laptop", "headphones", "subscription", "phone case", "monitor", "keyboard",
                    "coffee maker", "gift card", "smart watch", "desk lamp"],
        "plan": ["premium plan", "basic plan", "team subscription", "annual plan", "pro membership"],
        "device": ["iPhone", "Android phone", "laptop", "tablet", "work computer", "Chromebook"],
        "feature": ["dashboard", "reports page", "settings", "search", "export", "calendar", "inbox"],
        "order_id": ["#A1234", "#88412", "#30021", "#77-1902", "#55310", "#B7781", "#10293"],
        "amount": ["$19.99", "$49", "$120", "$7.50", "$310"],
        "month": ["January", "March", "last month", "October", "this quarter", "December"],
    },
    "outputs": [
        {"output": "refund_request", "topics": ["billing"],
         "templates": ["I want a refund for my {product}", "can I get my money back for the {product}",
                       "please refund the {amount} charge", "how do I request a refund for the {product}",
                       "I'd like to return the {product} and get refunded", "refund me for the {product} I never used",
                       "the {product} was not what I ordered, I want my {amount} back"],
         "slots": {"subject": ["a refund", "getting my money back", "a refund for my order", "reimbursement"]}},
        {"output": "payment_failed", "topics": ["billing"],
         "templates": ["my {card} was declined when paying for the {product}", "the payment for my {plan} keeps failing",
                       "I can't pay, checkout says {error}", "why was my {card} rejected",
                       "checkout fails every time with my {card}", "payment error {error} on my {plan} renewal"],
         "slots": {"card": ["Visa card", "Mastercard", "credit card", "debit card", "PayPal account"],
                   "error": ["'transaction declined'", "'payment error 402'", "'card expired'", "'insufficient funds'"],
                   "subject": ["a failed payment", "my declined card", "a payment error", "checkout failing"]}},
        {"output": "invoice_question", "topics": ["billing"],
         "templates": ["why is my invoice higher than last month", "I was charged twice for the {plan}",
                       "can you explain the {amount} charge on my bill", "where can I download my invoice for {month}",
                       "there's an unknown charge on my statement from {month}", "my {month} bill shows the wrong {plan}"],
         "slots": {"subject": ["my invoice", "a charge on my bill", "a double charge", "my billing statement"]}},
        {"output": "login_issue", "topics": ["technical"],
         "templates": ["I can't log in to my account", "the login page keeps saying {error}",
                       "the two-factor code never arrives on my {device}", "I'm locked out after too many attempts",
                       "sign in fails on the {device} app", "logging in from my {device} just loops back to the start"],
         "slots": {"error": ["'invalid credentials'", "'session expired'", "'something went wrong'", "'account not found'"],
                   "subject": ["logging in", "a login error", "two-factor sign in", "signing in"]}},
        {"output": "bug_report", "topics": ["technical"],
         "templates": ["the {feature} crashes when I click save", "the {feature} shows a blank screen on my {device}",
                       "I found a bug: the {feature} duplicates my entries", "the app freezes whenever I open the {feature}",
                       "error 500 when I use the {feature}", "the {feature} button does nothing on my {device}"],
         "slots": {"subject": ["a crash in the app", "a bug I found", "an error page", "a broken button"]}},
        {"output": "performance_issue", "topics": ["technical"],
         "templates": ["the {feature} is really slow today", "the {feature} takes forever to load on my {device}",
                       "everything lags since the last update", "pages time out when loading the {feature}",
                       "the app is slow on my {device}", "it takes a minute to open the {feature}"],
         "slots": {"subject": ["the app being slow", "slow loading", "lag in the app", "timeouts"]}},
        {"output": "update_profile", "topics": ["account"],
         "templates": ["how do I change the email on my account", "I need to update my {detail}",
                       "can I change my {detail} to something else", "where do I edit my {detail}",
                       "please update the {detail} on my profile", "my {detail} is out of date, how do I fix it"],
         "slots": {"detail": ["email address", "phone number", "billing address", "display name", "company name"],
                   "subject": ["changing my profile details", "updating my email", "editing my details"]}},
        {"output": "close_account", "topics": ["account"],
         "templates": ["please delete my account", "how do I close my account permanently",
                       "I want to cancel my {plan} and remove all my data", "deactivate my profile please",
                       "remove my account and personal data", "I'm leaving, shut down my account and the {plan}"],
         "slots": {"subject": ["closing my account", "deleting my data", "deactivating my profile", "account deletion"]}},
        {"output": "password_reset", "topics": ["account"],
         "templates": ["I forgot my password", "the password reset link in my email expired",
                       "how do I reset my password on my {device}", "I never received the reset email",
                       "change my password please", "the reset password form rejects my new password"],
         "slots": {"subject": ["resetting my password", "a forgotten password", "the password reset link"]}},
        {"output": "track_order", "topics": ["shipping"],
         "templates": ["where is my {product}", "can you track order {order_id}", "my {product} hasn't shipped yet",
                       "when will order {order_id} arrive", "what's the status of my {product} delivery",
                       "the tracking page for {order_id} hasn't updated in days"],
         "slots": {"subject": ["tracking my order", "where my package is", "my delivery status", "an order update"]}},
        {"output": "delivery_problem", "topics": ["shipping"],
         "templates": ["my {product} arrived damaged", "the package was delivered to the wrong address",
                       "order {order_id} is missing an item", "the courier left my {product} outside in the rain",
                       "I received someone else's package instead of my {product}", "the box for {order_id} was empty"],
         "slots": {"subject": ["a damaged delivery", "a wrong delivery", "a missing item in my package"]}},
    ],
    "shared_templates": ["I have a question about {subject}", "need help with {subject}",
                         "it's about {subject} again", "{subject} - please advise",
                         "can someone look into {subject}?", "following up on {subject}"],
}

CODE_GENERATION: dict[str, Any] = {
    "description": "Programming requests routed to a coding task (write, fix, test, explain, refactor, optimize).",
    "slots": {"symptom": ["hangs forever", "returns nothing", "gives duplicate rows", "crashes on empty input",
                          "prints the wrong total"]},
    "topics": [
        {"name": "python", "slots": {
            "lang": ["Python", "python3"], "thing": ["function", "class", "script", "module"],
            "task": ["parses a CSV file", "removes duplicates from a list", "validates an email address",
                     "merges two sorted lists", "computes a moving average", "reads a JSON config"],
            "error": ["a KeyError", "an IndexError", "TypeError: 'NoneType' object is not subscriptable"],
            "framework": ["pytest", "unittest"]}},
        {"name": "javascript", "slots": {
            "lang": ["JavaScript", "JS", "Node.js"], "thing": ["function", "module", "React component", "helper"],
            "task": ["debounces user input", "fetches data from an API", "formats dates", "deep clones an object",
                     "sorts a table by column"],
            "error": ["'undefined is not a function'", "a TypeError", "an unhandled promise rejection"],
            "framework": ["Jest", "Mocha"]}},
        {"name": "sql", "slots": {
            "lang": ["SQL", "Postgres SQL"], "thing": ["query", "stored procedure", "view"],
            "task": ["returns the top 10 customers by revenue", "joins orders with customers",
                     "counts signups per day", "finds duplicate emails"],
            "error": ["a syntax error near JOIN", "'ambiguous column name'", "a division by zero"],
            "framework": ["pgTAP", "dbt tests"]}},
        {"name": "bash", "slots": {
            "lang": ["bash", "shell"], "thing": ["script", "one-liner", "cron job"],
            "task": ["renames all .txt files", "backs up a folder every night", "counts lines in every log file",
                     "finds files larger than 1GB"],
            "error": ["'command not found'", "'permission denied'", "'unbound variable'"],
            "framework": ["bats", "shunit2"]}},
    ],
    "outputs": [
        {"output": "write_function", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["write a {lang} {thing} that {task}", "I need {lang} code that {task}",
                       "can you implement a {thing} which {task} in {lang}", "generate a {lang} {thing} that {task}",
                       "create a new {thing} that {task}"],
         "slots": {"subject": ["writing new code", "a new function", "implementing a feature"]}},
        {"output": "fix_bug", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["my {lang} {thing} throws {error}, can you fix it", "this {lang} code {symptom}, what is wrong",
                       "fix the bug in my {thing}: it fails with {error}", "why does my {lang} {thing} crash with {error}",
                       "debug this {lang} {thing}, it {symptom}"],
         "slots": {"subject": ["a bug", "an error in my code", "broken code"]}},
        {"output": "write_tests", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["write unit tests for my {lang} {thing} that {task}", "add {framework} test cases for this {thing}",
                       "how do I test a {lang} {thing} that {task}", "generate tests covering edge cases of my {thing}",
                       "I need {framework} tests for this {lang} code"],
         "slots": {"subject": ["unit tests", "test coverage", "writing tests"]}},
        {"output": "explain_code", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["explain what this {lang} {thing} does", "can you walk me through this {lang} code",
                       "what does this {thing} that {task} actually do line by line",
                       "I don't understand this {lang} snippet, explain it", "describe how this {thing} works in plain English"],
         "slots": {"subject": ["understanding some code", "an explanation of a snippet", "what this code means"]}},
        {"output": "refactor_code", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["refactor this {lang} {thing} to be more readable", "clean up my {lang} code that {task}",
                       "split this long {thing} into smaller pieces", "make this {lang} {thing} follow best practices",
                       "rewrite this {thing} without the duplicated logic"],
         "slots": {"subject": ["refactoring", "cleaning up code", "code structure"]}},
        {"output": "optimize_performance", "topics": ["python", "javascript", "sql", "bash"],
         "templates": ["make my {lang} {thing} faster", "this {thing} that {task} is too slow on big inputs",
                       "optimize this {lang} code for speed", "reduce the memory usage of my {lang} {thing}",
                       "my {thing} takes minutes to run, how can I speed it up"],
         "slots": {"subject": ["performance", "slow code", "speeding up code"]}},
    ],
    "shared_templates": ["{lang} question: {subject}", "need help with {subject} in {lang}",
                         "{subject} ({lang} {thing})", "can you assist with {subject}?"],
}

DATA_ANALYSIS: dict[str, Any] = {
    "description": "Analytics questions routed to an analysis type (aggregate, trend, compare, forecast, anomalies, charts).",
    "slots": {"period": ["last quarter", "this year", "the past 30 days", "2023", "last week", "since January"]},
    "topics": [
        {"name": "sales", "slots": {"metric": ["revenue", "units sold", "average order value", "sales"],
                                    "segment": ["region", "product line", "sales rep"]}},
        {"name": "marketing", "slots": {"metric": ["click-through rate", "conversions", "cost per lead", "signups"],
                                        "segment": ["campaign", "channel", "audience"]}},
        {"name": "finance", "slots": {"metric": ["operating expenses", "cash flow", "gross margin", "spend"],
                                      "segment": ["department", "cost center", "business unit"]}},
        {"name": "operations", "slots": {"metric": ["delivery times", "ticket volume", "inventory turnover",
                                                    "defect rate"],
                                         "segment": ["warehouse", "shift", "supplier"]}},
    ],
    "outputs": [
        {"output": "aggregate_metric", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["what was the total {metric} for {period}", "sum up {metric} by {segment}",
                       "give me the average {metric} for {period}", "how much {metric} did we have {period}",
                       "calculate {metric} per {segment}"],
         "slots": {"subject": ["a total", "summary numbers", "an aggregate"]}},
        {"output": "trend_analysis", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["how has {metric} changed over {period}", "show the trend of {metric} month over month",
                       "is {metric} going up or down {period}", "what's the growth rate of {metric} {period}",
                       "describe how {metric} evolved week by week"],
         "slots": {"subject": ["a trend", "changes over time", "growth"]}},
        {"output": "compare_segments", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["compare {metric} across each {segment}", "which {segment} has the highest {metric}",
                       "rank every {segment} by {metric}", "how does {metric} differ from one {segment} to another",
                       "break down the gap in {metric} between each {segment}"],
         "slots": {"subject": ["a comparison", "differences between groups", "a ranking"]}},
        {"output": "forecast", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["predict {metric} for next quarter", "forecast {metric} for the next 6 months",
                       "what will {metric} look like next year", "project {metric} based on {period}",
                       "estimate future {metric} for each {segment}"],
         "slots": {"subject": ["a forecast", "a prediction", "future numbers"]}},
        {"output": "anomaly_detection", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["find unusual spikes in {metric}", "were there any outliers in {metric} {period}",
                       "flag anomalies in {metric} by {segment}", "why did {metric} suddenly drop {period}",
                       "detect abnormal {metric} values"],
         "slots": {"subject": ["outliers", "anomalies", "a sudden spike"]}},
        {"output": "visualize", "topics": ["sales", "marketing", "finance", "operations"],
         "templates": ["make a bar chart of {metric} by {segment}", "create a dashboard for {metric}",
                       "draw a line chart of {metric} for {period}", "visualize {metric} as a heatmap by {segment}",
                       "give me a pie chart of {metric} per {segment}"],
         "slots": {"subject": ["a chart", "a visualization", "a dashboard"]}},
    ],
    "shared_templates": ["I need {subject} for {metric}", "{metric}, {period}: {subject}",
                         "can you help with {subject} on {metric}?", "{subject} of {metric} by {segment}"],
}

CONTENT_CREATION: dict[str, Any] = {
    "description": "Writing requests routed to a content type (blog post, social post, email, product copy, summary, headline).",
    "slots": {"tone": ["friendly", "formal", "playful", "persuasive", "concise"],
              "product": ["wireless earbuds", "a standing desk", "organic coffee beans", "a smart thermostat",
                          "running shoes", "a travel backpack"]},
    "topics": [
        {"name": "marketing", "slots": {"matter": ["our spring sale", "the new loyalty program", "our product launch"],
                                        "audience": ["customers", "prospects", "subscribers"]}},
        {"name": "social", "slots": {"matter": ["our team offsite", "a customer success story", "our 10th anniversary"],
                                     "audience": ["followers", "the community"]}},
        {"name": "technical", "slots": {"matter": ["the API v2 migration", "our new security features",
                                                   "the database upgrade"],
                                        "audience": ["developers", "IT admins"]}},
        {"name": "education", "slots": {"matter": ["remote work tips", "time management", "learning to code"],
                                        "audience": ["students", "beginners"]}},
    ],
    "outputs": [
        {"output": "blog_post", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["write a blog post about {matter}", "draft a {tone} article on {matter} for {audience}",
                       "I need a 1000-word blog entry about {matter}", "create a long-form post explaining {matter}",
                       "write an article for our blog on {matter}"],
         "slots": {"subject": ["a blog post", "an article", "a long read"]}},
        {"output": "social_media_post", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["write a tweet about {matter}", "draft a {tone} LinkedIn post announcing {matter}",
                       "create an Instagram caption for {matter}", "give me 3 social posts about {matter}",
                       "short post for {audience} about {matter} with hashtags"],
         "slots": {"subject": ["a social post", "a tweet", "a caption"]}},
        {"output": "email_draft", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["write an email to {audience} about {matter}", "draft a {tone} newsletter on {matter}",
                       "compose a follow-up email about {matter}", "help me email {audience} regarding {matter}",
                       "write a reminder email about {matter}"],
         "slots": {"subject": ["an email", "a newsletter", "a mail to send"]}},
        {"output": "product_description", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["write a product description for {product}", "describe {product} for our online store",
                       "create a {tone} listing for {product}", "I need copy for the product page of {product}",
                       "write bullet points describing {product}"],
         "slots": {"subject": ["product copy", "a product listing", "a store description"]}},
        {"output": "summary", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["summarize this report on {matter}", "give me a tl;dr of the article about {matter}",
                       "condense these meeting notes about {matter}", "write a short summary of {matter} for {audience}",
                       "what are the key points of this text on {matter}"],
         "slots": {"subject": ["a summary", "a tl;dr", "the key points"]}},
        {"output": "headline", "topics": ["marketing", "social", "technical", "education"],
         "templates": ["suggest headlines for a post about {matter}", "give me 5 catchy titles on {matter}",
                       "write a {tone} subject line about {matter}", "I need a headline for {matter}",
                       "brainstorm title ideas for {matter}"],
         "slots": {"subject": ["a headline", "title ideas", "a subject line"]}},
    ],
    "shared_templates": ["I need {subject} about {matter}", "{subject} for {audience}, {tone} tone",
                         "help me with {subject} on {matter}", "{subject}: {matter}"],
}

TASK_AUTOMATION: dict[str, Any] = {
    "description": "Commands routed to an automation tool (email, meetings, reminders, files, data sync, tickets).",
    "slots": {"person": ["Alice", "the sales team", "my manager", "Dr. Patel", "the client", "Jordan"],
              "time": ["tomorrow at 10am", "next Monday", "every Friday at 4pm", "in two hours", "at the end of the month"]},
    "outputs": [
        {"output": "send_email", "topics": ["communication"],
         "templates": ["send an email to {person} about {thing}", "email {person} the {doc}",
                       "write and send {person} a note saying {message}", "forward the {doc} to {person}",
                       "reply to {person} that {message}"],
         "slots": {"thing": ["the quarterly report", "the project timeline", "the budget"],
                   "doc": ["invoice", "contract", "slides", "meeting notes"],
                   "message": ["I'm running late", "the deal is approved", "we need more time"],
                   "subject": ["an email", "a message to send", "an email reply"]}},
        {"output": "schedule_meeting", "topics": ["scheduling"],
         "templates": ["schedule a meeting with {person} {time}", "book a call with {person} {time}",
                       "set up a 30 minute sync with {person}", "find a slot {time} to meet {person}",
                       "invite {person} to a review {time}"],
         "slots": {"subject": ["a meeting", "a calendar invite", "a call"]}},
        {"output": "set_reminder", "topics": ["scheduling"],
         "templates": ["remind me to {chore} {time}", "set a reminder {time} to {chore}",
                       "don't let me forget to {chore}", "ping me {time} about {chore}",
                       "create a recurring reminder to {chore}"],
         "slots": {"chore": ["pay rent", "call the bank", "submit the timesheet", "water the plants", "renew my passport"],
                   "subject": ["a reminder", "an alert", "a nudge"]}},
        {"output": "organize_files", "topics": ["files"],
         "templates": ["move all {filetype} files into the {folder} folder", "rename the {filetype} files by date",
                       "archive old {filetype} files from {folder}", "delete duplicate {filetype} files in {folder}",
                       "zip the {folder} folder and back it up"],
         "slots": {"filetype": ["PDF", "image", "CSV", "log"], "folder": ["Downloads", "Archive", "Projects", "Shared"],
                   "subject": ["my files", "file cleanup", "folder organisation"]}},
        {"output": "sync_data", "topics": ["integrations"],
         "templates": ["sync new {record}s from {app} to the CRM", "export {record}s from {app} to a spreadsheet",
                       "copy every new {record} in {app} into our database", "keep {app} and the CRM in sync",
                       "import {record}s from {app} nightly"],
         "slots": {"record": ["lead", "contact", "order", "invoice"], "app": ["Shopify", "HubSpot", "Stripe", "Typeform"],
                   "subject": ["a data sync", "an import", "a data export"]}},
        {"output": "create_ticket", "topics": ["integrations"],
         "templates": ["open a ticket for {issue}", "file a bug in Jira about {issue}", "create a support ticket: {issue}",
                       "log an incident for {issue} and assign it to {person}", "add a task to the backlog for {issue}"],
         "slots": {"issue": ["the broken login page", "slow checkout", "a failing nightly build", "the printer on floor 3"],
                   "subject": ["a ticket", "an incident", "a backlog item"]}},
    ],
    "shared_templates": ["automate {subject}", "can you handle {subject} for me", "set up {subject} please",
                         "{subject}, {time}"],
}

SCENARIOS: dict[str, dict[str, Any]] = {
    "customer-support": CUSTOMER_SUPPORT,
    "code-generation": CODE_GENERATION,
    "data-analysis": DATA_ANALYSIS,
    "content-creation": CONTENT_CREATION,
    "task-automation": TASK_AUTOMATION,
}
CUSTOM = "custom"
SCENARIO_TYPES = (*SCENARIOS, CUSTOM)

# Seed 002 `data_type` names -> scenario type. The scenario names themselves (with "_" or "-")
# are accepted too.
DATA_TYPES: dict[str, str] = {
    "customer_queries": "customer-support", "support_tickets": "customer-support",
    "customer_messages": "customer-support",
    "code_requests": "code-generation", "coding_tasks": "code-generation", "programming_questions": "code-generation",
    "analytics_questions": "data-analysis", "data_queries": "data-analysis", "business_questions": "data-analysis",
    "content_requests": "content-creation", "writing_prompts": "content-creation", "marketing_copy": "content-creation",
    "automation_commands": "task-automation", "workflow_tasks": "task-automation", "assistant_commands": "task-automation",
}


def data_types_of(scenario_type: str) -> list[str]:
    return [name for name, target in DATA_TYPES.items() if target == scenario_type]


def resolve_data_type(data_type: str, field: str = "data_type") -> str:
    """Seed 002 name -> scenario type; unknown names are refused with the valid ones listed."""
    key = data_type.strip().lower().replace("-", "_")
    if key in DATA_TYPES:
        return DATA_TYPES[key]
    if key.replace("_", "-") in SCENARIOS:
        return key.replace("_", "-")
    valid = sorted(DATA_TYPES) + sorted(s.replace("-", "_") for s in SCENARIOS)
    raise InvalidArgument(field, f"unknown data type '{data_type}'; valid data types: {', '.join(valid)}")


def check_scenario_type(scenario_type: str, field: str = "scenario_type") -> str:
    name = scenario_type.strip().lower()
    if name not in SCENARIO_TYPES:
        raise InvalidArgument(field, f"unknown scenario type '{scenario_type}'; valid scenario types: "
                                     f"{', '.join(SCENARIO_TYPES)}")
    return name


def spec_of(scenario_type: str) -> dict[str, Any]:
    """The full specification of a built-in scenario, with the shared paraphrase material."""
    base = SCENARIOS[scenario_type]
    return {**{k: v for k, v in base.items() if k != "description"},
            "openers": _OPENERS, "closers": _CLOSERS, "synonyms": _SYNONYMS}


@lru_cache(maxsize=None)
def builtin(scenario_type: str) -> CompiledScenario:
    """Compiled once per process: the catalogs are constants."""
    return compile_scenario(spec_of(scenario_type), scenario_type, at=f"scenarios.{scenario_type}")
