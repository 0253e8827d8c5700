# Certwright container image: a Go build stage, then a final stage FROM
# scratch holding only the static binary (CGO_ENABLED=0: the SQLite driver
# is pure Go), the CA bundle for outgoing webhook and SMTP TLS, and an empty
# data volume, run as a non-root user.
#
#   docker build -t certwright .
#   docker volume create certwright
#   docker run --rm -it -v certwright:/data certwright init --org Example \
#       --public-http-url http://pki.example.internal:8080 --tls-names pki.example.internal,localhost \
#       --https-listen 0.0.0.0:8443 --http-listen 0.0.0.0:8080
#   docker run -d --name certwright -v certwright:/data -p 8443:8443 -p 8080:8080 certwright
#
# The data directory is /data/certwright (CERTWRIGHT_DATA_DIR); its kek must
# be backed up apart from the database (see "Backup and restore" in the README).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/certwright ./cmd/certwright \
 && mkdir -m 0700 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/certwright /usr/local/bin/certwright
# 65532: the conventional unprivileged "nonroot" user; no /etc/passwd needed.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CERTWRIGHT_DATA_DIR=/data/certwright
VOLUME ["/data"]
# HTTPS API and ACME; plain-HTTP CRL, OCSP, /healthz.
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/certwright"]
CMD ["serve"]
