"""The tags of the hierarchical serialization format: one list shared by serializer and tokenizer."""

INTENTS = ("FIX", "ADD", "REFACTOR", "OPTIMIZE")
TARGET_KINDS = ("func", "type", "interface")

REPO = "<REPO>"
PR_TITLE = "<PR_TITLE>"
PR_BODY = "<PR_BODY>"
PLAN = "<PLAN>"
STEP = "<STEP>"
PLAN_END = "</PLAN>"
CONTEXT = "<CONTEXT>"
CONTEXT_END = "</CONTEXT>"
FILE = "<FILE"  # written as <FILE path="internal/server.go">
FILE_END = "</FILE>"
BEFORE = "<BEFORE>"
BEFORE_END = "</BEFORE>"
CODE = "<CODE>"
CODE_END = "</CODE>"  # also the controller's "done" decision
AFTER = "<AFTER>"
AFTER_END = "</AFTER>"
VALIDATE = "<VALIDATE>"
VALIDATE_END = "</VALIDATE>"
SYNTAX_OK = "<SYNTAX_OK>"
TEST_PASS = "<TEST_PASS>"
COMMENTS = "<COMMENTS>"
COMMENTS_END = "</COMMENTS>"
REFINE = "<REFINE>"  # controller: the attempt failed validation, try again
CONTINUE = "<CONTINUE>"  # controller: the attempt is unfinished, keep generating


def intent_tag(intent: str) -> str:
    return f"<INTENT:{intent}>"


def target_tag(kind: str) -> str:
    return f"<TARGET:{kind}>"


BASE_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")

# Every tag the serializer can emit, each a single tokenizer piece.
FORMAT_TAGS = (
    REPO,
    PR_TITLE,
    PR_BODY,
    CODE,
    CONTEXT,
    PLAN,
    STEP,
    PLAN_END,
    *(intent_tag(i) for i in INTENTS),
    *(target_tag(k) for k in TARGET_KINDS),
    VALIDATE,
    SYNTAX_OK,
    TEST_PASS,
    REFINE,
    CONTINUE,
    CONTEXT_END,
    FILE,
    FILE_END,
    BEFORE,
    BEFORE_END,
    CODE_END,
    AFTER,
    AFTER_END,
    VALIDATE_END,
    COMMENTS,
    COMMENTS_END,
)
