{{/* Names and labels shared by every manifest. */}}
{{- define "ibe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ibe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ibe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ibe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ibe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ibe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The Secret holding the API keys: the chart's own or an existing one. */}}
{{- define "ibe.secretName" -}}
{{- default (printf "%s-api-keys" (include "ibe.fullname" .)) .Values.apiKeys.existingSecret -}}
{{- end -}}

{{/* The web config Secret, existing or rendered; empty without a web config. */}}
{{- define "ibe.webConfigSecret" -}}
{{- if .Values.webConfig.existingSecret -}}
{{- .Values.webConfig.existingSecret -}}
{{- else if .Values.webConfig.config -}}
{{- printf "%s-web-config" (include "ibe.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The OTLP headers Secret, existing or rendered; empty without headers. */}}
{{- define "ibe.otlpHeadersSecret" -}}
{{- if .Values.otlp.headersSecret.name -}}
{{- .Values.otlp.headersSecret.name -}}
{{- else if .Values.otlp.headers -}}
{{- printf "%s-otlp-headers" (include "ibe.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "ibe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ibe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag, or @digest; global.imageRegistry wins over the image's registry.
     Call with (list $ .Values.image). */}}
{{- define "ibe.imageRef" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $registry := default $image.registry (($root.Values.global).imageRegistry) -}}
{{- $name := ternary (printf "%s/%s" $registry $image.repository) $image.repository (ne $registry "") -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $name $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name (default $root.Chart.AppVersion $image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* The pod's pull secrets, global ones first, as a YAML list; empty without any. */}}
{{- define "ibe.imagePullSecrets" -}}
{{- $secrets := concat (default (list) ((.Values.global).imagePullSecrets)) (default (list) .Values.imagePullSecrets) | uniq -}}
{{- with $secrets -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/* Refuses a URL left empty, not https, or on a documentation placeholder host.
     Call with (list "values.key" $url "what to set"). */}}
{{- define "ibe.checkUrl" -}}
{{- $key := index . 0 -}}
{{- $url := index . 1 -}}
{{- $what := index . 2 -}}
{{- if not $url -}}
{{- fail (printf "%s is required: %s" $key $what) -}}
{{- end -}}
{{- $parsed := urlParse $url -}}
{{- $host := lower $parsed.hostname -}}
{{- if ne $parsed.scheme "https" -}}
{{- fail (printf "%s: %s is not https://: %s" $key $url $what) -}}
{{- end -}}
{{- if regexMatch "(^|\\.)(x{3,}|y{3,})(\\.|$)" $host -}}
{{- fail (printf "%s: %s is the documentation's placeholder, not a real host: %s" $key $host $what) -}}
{{- end -}}
{{- if regexMatch "(^|\\.)example(\\.(com|net|org))?$" $host -}}
{{- fail (printf "%s: %s is a placeholder (example domains are reserved for documentation): %s" $key $host $what) -}}
{{- end -}}
{{- end -}}

{{/* Every URL the exporter needs, checked once (from the config ConfigMap, always rendered). */}}
{{- define "ibe.checkUrls" -}}
{{- range $i, $t := .Values.targets -}}
{{- include "ibe.checkUrl" (list (printf "targets[%d].baseUrl" $i) $t.baseUrl (printf "set the personal API base URL of target %s from the Infobip portal, e.g. --set targets[%d].baseUrl=https://abc123.api.infobip.com" $t.name $i)) -}}
{{- end -}}
{{- include "ibe.checkUrl" (list "callback.publicUrl" .Values.callback.publicUrl "set the public https URL at which Infobip reaches the callback Service (through callback.ingress or a LoadBalancer), e.g. --set callback.publicUrl=https://billing.mycompany.io") -}}
{{- end -}}

{{/* The Ingress path: the path of callback.publicUrl, then /callback/. */}}
{{- define "ibe.callbackPath" -}}
{{- printf "%s/callback/" (trimSuffix "/" (urlParse .Values.callback.publicUrl).path) -}}
{{- end -}}

{{/* A probe of the values: httpGet in web.scheme unless it names its own scheme, and dropped
     when the values give another handler (Helm merges maps, so the default httpGet would stay
     beside a tcpSocket, exec or grpc). Call with (list $ .Values.livenessProbe). */}}
{{- define "ibe.probe" -}}
{{- $probe := deepCopy (index . 1) -}}
{{- if or $probe.tcpSocket $probe.exec $probe.grpc -}}
{{- $_ := unset $probe "httpGet" -}}
{{- end -}}
{{- with $probe.httpGet -}}
{{- $_ := set . "scheme" (default (upper (index $ 0).Values.web.scheme) .scheme) -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}
