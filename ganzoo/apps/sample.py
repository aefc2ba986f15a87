"""`ganzoo sample`: draw samples from a trained run."""
import hydra

from .. import config  # noqa: F401  registers the schemas with Hydra's ConfigStore
from .tasks import sample_task

main = hydra.main(config_path="pkg://ganzoo.conf", config_name="sample", version_base="1.3")(sample_task)

if __name__ == "__main__":
    main()
