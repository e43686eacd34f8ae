import time
from seriesgen_pipeline_tests.failure import harness as h

def test_timing(reference, fresh_db, tmp_path, backend):
    env = h.child_env(tmp_path / "dh", SERIESGEN_CHUNK_ROWS=str(h.CHUNK_ROWS))
    p = h.run(h.generate_args(fresh_db), env=env, workdir=tmp_path)
    s = h.read_state(fresh_db)
    print(h.diff_sessions(s.sessions, reference.state.sessions))
    got = h.sessions_json(fresh_db, env=env, workdir=tmp_path)
    print([ (a, b) for a, b in zip(got, reference.sessions_json) if a != b][:3])
