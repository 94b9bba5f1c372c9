"""A resumed run says so in its report: the header chip and the provenance rows."""

from emergelab.report.html import provenance_rows, render_page, resumed_text, run_meta
from emergelab.runs.store import RunStore

RUN = {"id": "r1", "status": "completed", "seed": 0, "version": "0.1", "git_commit": "abc"}
RESUMES = [{"at": "2026-12-02T07:55:10+00:00", "from_step": 200, "label": "1L"},
           {"at": "2026-12-02T08:10:59+00:00", "from_step": 400, "label": ""}]


def test_a_resumed_run_has_a_header_chip_and_a_provenance_row():
    meta = run_meta({**RUN, "resumes": RESUMES}, [])
    assert meta["resumed"] == "2x (last 2026-12-02 08:10 UTC from step 400)"
    assert list(meta)[:3] == ["run", "status", "resumed"]
    page = render_page("T", [], meta=meta)
    assert "<dt>resumed</dt><dd>2x (last 2026-12-02 08:10 UTC from step 400)</dd>" in page
    rows = dict(provenance_rows({**RUN, "resumes": RESUMES}))
    assert rows["resumed"] == "2026-12-02 07:55 UTC from 1L step 200; 2026-12-02 08:10 UTC from step 400"


def test_a_run_never_resumed_has_neither():
    assert "resumed" not in run_meta(RUN, []) and "resumed" not in dict(provenance_rows(RUN))
    assert resumed_text([{"at": "2026-01-01T00:00:00+00:00", "from_step": None}]) == "1x (last 2026-01-01 00:00 UTC)"


def test_the_store_record_of_resumes_reaches_the_header(tmp_path):
    with RunStore(tmp_path / "e.db") as st:
        run = st.create_run("induction", {}, "h", seed=0)
        st.set_status(run.id, "interrupted")
        st.claim_run(run.id)
        st.note_resume_step(run.id, 120, "2L")
        info = st.get_run(run.id).info()
    assert run_meta(info, [])["resumed"].startswith("1x (last ") and " UTC from 2L step 120)" in run_meta(info, [])[
        "resumed"]
