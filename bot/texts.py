"""Every fixed sentence the bot says, in one place, so the academy can review the wording.

Answers themselves live in knowledge/ (the FAQ) and safety advice in knowledge/red_flags.yaml.
"""

GREETING = (
    "Hello{name}! I'm the academy's assistant.\n"
    "I can tell you about our mesotherapy courses, what a treatment is like and aftercare, "
    "and I can pass a booking request to our team.\n\n"
    "Type a question in your own words, or pick from the menu."
)
HELP = (
    "Ask me anything about the courses or about mesotherapy, in your own words, for example:\n"
    "• How much is the pain mesotherapy course?\n"
    "• Where is the training held?\n"
    "• What should I do after my treatment?\n\n"
    "Commands:\n{commands}\n\n"
    "If I can't answer, or my answer misses the point (tap “Not what I asked” under it), I'll pass "
    "your question to our team and they'll follow up here. "
    "If you are worried about a reaction after a treatment, say so and I'll tell you where to get "
    "help straight away."
)
MENU_COURSES = "📚 Courses"
MENU_BOOK = "📝 Book a place"
MENU_AFTERCARE = "🩹 Aftercare"
MENU_ASK = "❓ Ask a question"
ASK_PROMPT = "Go ahead: type your question in your own words and I'll do my best to answer it."
COURSES_HEADER = "Our courses:"
COURSES_FOOTER = "Ask me about any of them, or tap below to request a booking."

DID_YOU_MEAN = (
    "I'm not completely sure what you're asking. Did you mean one of these? "
    "If none fits, tap “None of these” and I'll pass your question to our team."
)
NONE_OF_THESE = "None of these"
NOT_WHAT_I_ASKED = "Not what I asked"
NONE_OF_THESE_REPLY = (
    "Thanks. I've passed your question to our team so someone can answer it properly; "
    "they'll follow up with you here."
)
FALLBACK = (
    "I'm sorry, I don't have that in the academy's information, and I'd rather not guess. "
    "I've passed your question to our team and someone will follow up with you here."
)
GAP = (
    "I'm sorry, the academy's information doesn't cover {topic}, and I'd rather not guess. "
    "I've passed your question to our team and someone will follow up with you here."
)
PASSED_ON = "I've passed your message to our team."
NOT_PASSED_ON = "I couldn't pass your message to our team just now, so please contact them directly."
FALLBACK_NOT_SAVED = (
    "I'm sorry, I don't have that in the academy's information, and I'd rather not guess. "
    "I couldn't pass your question to our team just now; please try again in a few minutes."
)
MAY_HELP = "Meanwhile, one of these may help:"
BOOK_OFFER = "Would you like to request a place? Tap “Book a place” or send /book."
BOOK_LATER = "No problem. Whenever you're ready, send /book or tap “Book a place” in the menu."
BOOKING_START = "I'd be glad to help you book. I'll take a few details and pass them to our team."

EMPTY_MESSAGE = "It looks like that message was empty. What would you like to know?"
NO_QUESTION = "What would you like to know? Type your question in your own words, or send /help."
ABOUT_BOT = (
    "I'm the academy's automated assistant. I answer questions about our courses and about "
    "mesotherapy from the academy's own information, and pass anything else to our team."
)
THANKS = "You're welcome! Ask me anything else whenever you like."
GLAD = "Anything else I can help with? Ask in your own words whenever you like."
BYE = "Goodbye, and thanks for getting in touch! Message me any time."
# A message that only tells of a treatment had, with nothing asked and nothing wrong told.
TOLD_OF_TREATMENT = (
    "Thanks for letting us know. Ask me anything about your treatment in your own words, "
    "or pick one of these:"
)
NOT_TEXT = "I can only read text messages, so I can't open {what}. Please type your question and I'll help."
UNKNOWN_COMMAND = "I don't know the command {command}. Send /help to see what I can do."
EDITED = "I saw you edited your message; here's my answer to the new version:"
GROUP_HINT = "Mention me (@{username}) or reply to my message to ask a question here."
ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
ERROR_PASSED_ON = (
    "Sorry, something went wrong on my side. Your message is safe with our team ({reference}), "
    "and someone will follow up with you here."
)

# (command, description) in the order shown in Telegram's menu and in /help.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Start and show the menu"),
    ("courses", "Our courses and their key facts"),
    ("book", "Request a place on a course"),
    ("help", "What I can do"),
    ("privacy", "What we store and why"),
    ("mydata", "Send me the data you hold about me"),
    ("forgetme", "Delete the data you hold about me"),
    ("cancel", "Stop what we're doing"),
)
STALE_BUTTON = "That button is out of date. Please send your question again or use /start."

# Staff-facing texts (posted to the staff chat).
STAFF_KIND = {
    "urgent": "🚨 URGENT: possible complication",
    "booking": "📝 Booking request",
    "fallback": "❓ Unanswered question",
}
STAFF_POST = "{title} · {reference}\nFrom: {who}\n\n{text}"
STAFF_POST_HINT = "Reply to this message to answer the user through the bot."
STAFF_TAKE = "✋ Take"
STAFF_DONE = "✅ Done"

# Booking conversation.
BOOK_PRIVATELY = "To keep your details private, please message me directly to book: {link}"
BOOK_COURSE = "Which course would you like a place on?"
BOOK_NAME = "What's your full name, as it should appear on your certificate?"
BOOK_NAME_USE = "Use “{name}”"
BOOK_CONTACT = (
    "How can our team reach you? Tap the button below to share your Telegram phone number, "
    "or type an email address or phone number."
)
BOOK_SHARE_CONTACT = "📱 Share my phone number"
BOOK_BACKGROUND = (
    "Are you from a medical or a non-medical background? "
    "(It matters for SoMUK membership, which is priced differently for each.)"
)
BOOK_MEDICAL = "Medical"
BOOK_NON_MEDICAL = "Non-medical"
BOOK_NOTES = (
    "Any preferred dates, or anything else our team should know? Course dates aren't listed "
    "here, so our team will confirm what's available. Type it, or tap “No notes”."
)
BOOK_NO_NOTES = "No notes"
BOOK_CONSENT = (
    "Before I pass this on: how we use your details (UK GDPR)\n"
    "• What we keep: the course, your name, contact details, background and notes, and your "
    "Telegram name and id.\n"
    "• Why: only so our team can arrange your place and contact you about it.\n"
    "• How long: until your request is dealt with, then {days} more days, after which it is "
    "deleted.\n"
    "• Your rights: send /mydata to see it, or /forgetme to delete it at any time.\n\n"
    "Do you agree to us keeping these details for this purpose?"
)
BOOK_AGREE = "✅ I agree"
BOOK_DISAGREE = "✖️ No, cancel"
BOOK_SUMMARY = (
    "Please check your request:\n"
    "• Course: {course}\n• Name: {name}\n• Contact: {contact}\n• Background: {background}\n"
    "• Notes: {notes}\n\nShall I send it to our team?"
)
BOOK_CONFIRM = "✅ Confirm"
BOOK_EDIT = "✏️ Edit"
BOOK_CANCEL = "✖️ Cancel"
BOOK_EDIT_WHICH = "What would you like to change?"
BOOK_FIELD_LABELS = {
    "course": "Course",
    "name": "Name",
    "contact": "Contact",
    "background": "Background",
    "notes": "Notes",
}
BOOK_DONE = (
    "Thank you, {name}! Your booking request is saved as {reference}.\n"
    "Our team will contact you by {contact_kind} to confirm your place and take payment.{after_booking}\n"
    "Keep the reference in case you need to ask about it."
)
BOOK_NOT_SAVED = (
    "I'm sorry, I couldn't save your request just now, so nothing has been sent yet. "
    "Your answers are kept: tap Confirm again in a minute."
)
BOOK_CANCELLED = "No problem, I've cancelled that booking request; nothing was sent. /book starts again."
BOOK_DECLINED = (
    "Understood: without your agreement I can't keep your details, so nothing was saved. "
    "You can ask me questions any time, or /book again if you change your mind."
)
BOOK_EXPIRED = (
    "Your booking request was left unfinished for a while, so I've closed it and sent nothing. "
    "Send /book whenever you'd like to start again."
)
BOOK_IN_PROGRESS = "We're in the middle of your booking request (or send /cancel to stop)."
BOOK_RETRY = {
    "empty": "I didn't catch a name there. Please type your full name.",
    "letters": "That doesn't look like a name. Please type your full name in letters.",
    "long": "That's a bit long. Please keep it under {limit} characters.",
    "email": "That email address doesn't look right. Please check it and type it again.",
    "contact": (
        "I couldn't read that as an email address or phone number. Please type an email "
        "address, or a phone number with its country code, or tap the button to share your number."
    ),
    "not_own_contact": "Please share your own contact with the button, or type your email or phone.",
    "choose": "Please choose one of the buttons above.",
    "text": "I need a typed answer for this step.",
}

# Staff: the Take / Done buttons, replies relayed both ways, and the staff commands.
STAFF_ONLY = "Staff only."
STAFF_TAKEN_LINE = "✋ Taken by {who}"
STAFF_CLOSED_LINE = "✅ Closed by {who}"
STAFF_TOOK = "You have {reference}."
STAFF_ALREADY_YOURS = "{reference} is already yours."
STAFF_CLOSED = "{reference} closed."
STAFF_ALREADY_CLOSED = "{reference} was already closed ({who})."
STAFF_GONE = "That enquiry no longer exists (deleted at the user's request, or past its retention)."
STAFF_USER_NOT_TOLD = " The user could not be told: they have blocked the bot."
STAFF_RELAYED = "✓ sent to {name}"
STAFF_NOT_DELIVERED_BLOCKED = "✗ not delivered to {name}: they have blocked the bot."
STAFF_NOT_DELIVERED = "✗ not delivered to {name}: {error}"
STAFF_RELAY_CLOSED = "{reference} is closed, so nothing was sent. Press Take to reopen it, then reply again."
STAFF_RELAY_NOT_STAFF = "Only staff can answer users through the bot."
STAFF_POST_FORGOTTEN = "🗑 {reference}: deleted at the user's request (/forgetme)."
# The header on a user's message relayed into the staff chat during a hand-off.
RELAY_HEADER = "💬 {name} · {reference}"
RELAY_HEADER_EDITED = "✏️ {name} · {reference} (edited message)"
RELAY_FAILED = "Sorry, I couldn't pass that on to our team just now. Please try again in a few minutes."
# The user's side of Take / Done.
USER_TAKEN = (
    "A member of our team is now looking at your enquiry {reference}. "
    "Anything you send here goes straight to them."
)
USER_CLOSED = "Your enquiry {reference} is now closed. If you need anything else, just ask me here."

STAFF_KIND_SHORT = {"urgent": "🚨 urgent", "booking": "📝 booking", "fallback": "❓ question"}
STAFF_STATUS = {"new": "new", "in_progress": "in progress", "done": "done"}
STAFF_LIST_HEADER = "Open enquiries, newest first (page {page} of {pages}, {total} open):"
STAFF_LIST_ITEM = "{reference} · {kind} · {status}{handler}\n    {who}: {text}"
STAFF_LIST_HANDLER = " ({who})"
STAFF_LIST_EMPTY = "No open enquiries. 🎉"
STAFF_PREV = "‹ Prev"
STAFF_NEXT = "Next ›"
STAFF_DETAIL = (
    "{reference} · {kind} · {status}\n"
    "From: {who}\n"
    "Received: {created}\n"
    "Handled by: {handled}\n"
    "Relayed: {to_user} to the user, {to_staff} from the user\n\n"
    "{text}"
)
STAFF_NOBODY = "nobody yet"
STAFF_DETAIL_DETAILS = "Details:"
STAFF_DETAIL_NOTES = "Notes:"
STAFF_DETAIL_NOTE = "• {at} {by}: {text}"
STAFF_NOTE_ADDED = "📝 Note added to {reference}."
STAFF_BAD_REFERENCE = "“{text}” isn't an enquiry reference: use a number like 12, #12 or ENQ-000012."
STAFF_NOT_FOUND = "There is no enquiry {reference}."
STAFF_USAGE = {
    "enquiries": "Usage: /enquiries [page], for example /enquiries 2",
    "enquiry": "Usage: /enquiry N, for example /enquiry 12",
    "done": "Usage: /done N, for example /done 12",
    "note": "Usage: /note N text, for example /note 12 Called back, booked for June",
}
STAFF_EXPORT_CAPTION = "{count} enquiries, exported {when} UTC."

# Privacy: /privacy, /mydata, /forgetme.
PRIVACY = (
    "Your privacy (UK GDPR)\n\n"
    "What I keep:\n"
    "• Enquiries: questions I passed to our team, urgent messages about a reaction, and booking "
    "requests (the course, your name, contact details, background and notes), with your "
    "Telegram name and id.\n"
    "• A question I wasn't sure about, while you choose from my suggestions. If you don't choose "
    "within {choice_minutes} minutes, it goes to our team as an enquiry.\n"
    "• A booking you haven't finished yet, so you can carry on where you left off.\n"
    "• Links between your messages and our team's replies, when a team member is talking with "
    "you here: which message answered which, not their content.\n"
    "• How often each FAQ answer is given. These counts hold nothing about you.\n"
    "• Each message you send, only until I have dealt with it (usually a moment), so that "
    "nothing is lost if I restart.\n"
    "• Your last message and my answer to it, in memory only and for {follow_up_minutes} minutes, "
    "so that a follow-up like “and for members?” or “it's spreading now” is understood.\n\n"
    "Why: only so our team can answer you, arrange your place and keep you safe after a "
    "treatment. Questions I answer myself are not stored.\n\n"
    "How long: an enquiry is kept while it is open, until our team has handled it, then "
    "{days} more days, after which it is deleted automatically. An unfinished booking is "
    "dropped after {booking_minutes} minutes.\n\n"
    "Your rights: send /mydata to see everything I hold about you, or /forgetme to delete it."
)
PRIVATE_ONLY = "For your privacy, please send {command} to me in a private chat: {link}"
MYDATA_NOTHING = "I don't hold any data about you."
MYDATA_HEADER = "Here is everything I hold about you (Telegram id {user_id}):"
MYDATA_ENQUIRIES = "Enquiries ({count}):"
MYDATA_ENQUIRY = "• {reference}, {kind}, {status}, received {created}\n  “{text}”"
MYDATA_FIELD = "  {label}: {value}"
MYDATA_KIND = {"fallback": "question for our team", "booking": "booking request", "urgent": "urgent message"}
MYDATA_STATUS = {"new": "waiting for our team", "in_progress": "with our team", "done": "closed"}
MYDATA_NOTE = "  team note, {at}: {text}"
MYDATA_RELAYS = (
    "Messages passed between you and our team: {count} (I keep which message answered which, "
    "not what they said)."
)
MYDATA_AWAITING = (
    "A question I offered suggestions for, asked {asked}: “{text}”. If you don't pick one, "
    "it goes to our team."
)
MYDATA_CONVERSATION = "A booking request you haven't finished, last saved {updated}."
MYDATA_SAVED = "Saved while you use me: {data}"
MYDATA_FOOTER = "Send /forgetme to delete all of it."
MYDATA_DOCUMENT = (
    "That's too long for a message, so here it is as a file. Send /forgetme to delete all of it."
)
FORGET_CONFIRM = (
    "This deletes everything I hold about you: your enquiries and booking requests, the links "
    "to your messages with our team, and any booking you haven't finished. Our team won't be "
    "able to follow up on an open enquiry afterwards.\n\nDelete it all?"
)
FORGET_YES = "🗑 Yes, delete it all"
FORGET_NO = "No, keep it"
FORGET_DONE = (
    "Done: I've deleted everything I held about you ({enquiries} enquiries; {records} records in all)."
)
FORGET_NOTHING = "There was nothing to delete: I don't hold any data about you."
FORGET_KEPT = "OK, nothing was deleted."
