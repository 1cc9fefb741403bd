# Common environment for the project's scripts (sourced).
export RASA_TELEMETRY_ENABLED=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TMPDIR="${TMPDIR_OVERRIDE:-$PWD/var/tmp}"   # jieba.cache and TensorFlow files stay in the project
export KNOWLEDGE_DB_URL="${KNOWLEDGE_DB_URL:-sqlite:///$PWD/var/xinghe.db}"
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p var/tmp models
