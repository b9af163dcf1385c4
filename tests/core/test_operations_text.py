"""Text results of the on-demand engine operations are XML-1.0-clean (they end up in a plugin
result, which xapi parses strictly)."""

from xscontainer.engine.operations import run_operation


class LoggingEngine:
    """The one engine method ``logs`` needs, answering what a colourful container printed."""

    def __init__(self, pieces):
        self.pieces = pieces
        self.asked = []

    def logs(self, ref, tail=100):
        self.asked.append((ref, tail))
        return self.pieces


def test_logs_make_escape_sequences_visible_and_keep_non_ascii():
    engine = LoggingEngine([("stdout", b"\x1b[31mrouge caf\xc3\xa9\x1b[0m\r\n"),
                            ("stderr", b"bell\x07 tab\tend\n"), ("stdout", b"\xff\xfe not utf-8\n")])
    text = run_operation(engine, "logs", {"container": "web", "tail": 5})
    assert text == ("\\x1b[31mrouge caf\u00e9\\x1b[0m\r\n" "bell\\x07 tab\tend\n"
                    "\ufffd\ufffd not utf-8\n")
    assert engine.asked == [("web", 5)]
