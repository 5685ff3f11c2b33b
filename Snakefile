# dreammotion: edit every row of a CSV manifest with DreamMotion.
# All logic lives in the `dreammotion` package; the rules only call its command line.

from snakemake.utils import min_version

from dreammotion.validate import check_config_file

min_version("9.0")

check_config_file("config/config.yaml", missing_ok=True)  # a YAML error names the file and line


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/edit.smk"
include: "workflow/rules/upsample.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True


onerror:
    write_partial_summary()
