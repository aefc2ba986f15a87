"""`ganzoo sample`: draw samples from a trained run."""
import hydra

from ..config import SampleConfig, load_simple
from .tasks import guarded


def _sample(c):
    from ..use import sample_command
    sample_command(c)


main = hydra.main(config_path="pkg://ganzoo.conf", config_name="sample", version_base="1.3")(
    guarded(lambda raw: load_simple(SampleConfig, raw), _sample))

if __name__ == "__main__":
    main()
