# The web image (web, worker, beat, migrate): `pip install .`, no torch. The gpu-worker image is the
# same with EXTRAS=gpu: the CUDA build of torch 2.13.0 (TORCH_INDEX_URL) first, then `.[gpu]`.
# Every version comes from requirements.lock (pip constraints).
FROM python:3.11-slim-bookworm
ARG EXTRAS=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md requirements.lock ./
COPY studyserver ./studyserver
COPY generator ./generator
COPY analysis ./analysis
RUN case ",$EXTRAS," in *,gpu,*) \
      pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0 ;; esac \
 && pip install --no-cache-dir -c requirements.lock ".${EXTRAS:+[$EXTRAS]}"
COPY manage.py ./
COPY templates ./templates
# Static files outside var/ (the owner-only folder of personal data), readable by the server's user.
ENV STATIC_ROOT=/app/static
RUN SECRET_KEY=build DATABASE_URL=sqlite:////tmp/build.sqlite3 MEDIA_ROOT=/tmp/media \
    python manage.py collectstatic --noinput
USER nobody
EXPOSE 8000
CMD ["gunicorn", "studyserver.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "60"]
