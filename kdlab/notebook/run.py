"""What every step of a run shares: the config, the teacher, the data, the run folder, the exercise checks."""

from __future__ import annotations

from kdlab import exercises, lab as steps, tables
from kdlab.config import KDConfig
from kdlab.course.runtimes import describe_minutes
from kdlab.data.sources import label_names
from kdlab.errors import KDLabError
from kdlab.models.teacher import Teacher


class LabRun:
    """One run of the lab (``runs/<profile>/``): ``Lab(PROFILE, student_id=STUDENT_ID)`` loads and validates the
    config (``kdlab.lab.setup``) and says where the artifacts go. The teacher and the data load on first use:
    ``lab.teacher`` is 01's prepared teacher (it stops, naming 01-Setup, when 01 has not run)."""

    def __init__(self, profile: str | None = None, student_id: str | None = None, **overrides):
        self.cfg: KDConfig = steps.setup(profile, student_id=student_id, **overrides)
        self._teacher: Teacher | None = None
        self._data = None
        self._students: dict | None = None
        self._evals: dict | None = None
        self._lineup: dict | None = None  # 04's models, loaded once
        self._tokenizer = None
        print(f"profile = {self.cfg.profile}   artifacts → {self.cfg.run_dir()}")
        print(describe_minutes(self.cfg) or f"time: the `{self.cfg.profile}` profile has no timed or estimated run")

    # --- what every notebook shares ------------------------------------------------------------------------------
    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            self._teacher = steps.lab_teacher(self.cfg)
        return self._teacher

    @property
    def data(self):
        if self._data is None:
            self._data = steps.load_data(self.cfg)
        return self._data

    @property
    def results(self) -> dict:
        """Everything this run recorded so far (``runs/<profile>/results.json``)."""
        return steps.results(self.cfg)

    @property
    def challenges(self) -> bool:
        """Whether the profile runs the optional challenge cells (set ``RUN_CHALLENGES`` to override)."""
        return bool(self.cfg.challenges)

    @property
    def classes(self) -> list[str]:
        return label_names(self.data["validation"])

    def settings(self):
        """The settings that matter, one per row."""
        return tables.settings_table(self.cfg)

    def check(self, fn) -> None:
        """Check your exercise function (found by its name, e.g. ``kd_loss``) and show specific feedback."""
        by_function = {e.function: e.id for e in exercises.EXERCISES.values()}
        exercise = by_function.get(getattr(fn, "__name__", ""))
        if exercise is None:
            raise KDLabError(f"lab.check() knows the exercises by their function's name; "
                             f"{getattr(fn, '__name__', fn)!r} is none of {', '.join(sorted(by_function))}. "
                             "Keep the name the exercise cell gives your function.")
        exercises.emit(exercises.run_check(exercise, fn))
