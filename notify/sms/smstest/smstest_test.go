package smstest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldproject/herald/notify/sms/smstest"
)

func TestProvider(t *testing.T) {
	p := smstest.NewProvider("AC1", "tok")
	defer p.Close()
	endpoint := p.URL() + "/2010-04-01/Accounts/AC1/Messages.json"
	tests := []struct {
		name       string
		url        string
		user, pass string
		form       url.Values
		wantStatus int
		wantCode   int
	}{
		{"created", endpoint, "AC1", "tok", url.Values{"To": {"+4915112345678"}, "From": {"+15005550006"}, "Body": {"hi"}}, 201, 0},
		{"no auth", endpoint, "", "", url.Values{"To": {"+4915112345678"}, "From": {"+1500"}, "Body": {"hi"}}, 401, 20003},
		{"wrong token", endpoint, "AC1", "nope", url.Values{"To": {"+4915112345678"}, "From": {"+1500"}, "Body": {"hi"}}, 401, 20003},
		{"other account in path", p.URL() + "/2010-04-01/Accounts/AC2/Messages.json", "AC1", "tok", url.Values{"To": {"+49151"}, "From": {"+1500"}, "Body": {"hi"}}, 401, 20003},
		{"not e164", endpoint, "AC1", "tok", url.Values{"To": {"0151 1234"}, "From": {"+1500"}, "Body": {"hi"}}, 400, 21211},
		{"leading zero", endpoint, "AC1", "tok", url.Values{"To": {"+0151"}, "From": {"+1500"}, "Body": {"hi"}}, 400, 21211},
		{"no to", endpoint, "AC1", "tok", url.Values{"From": {"+1500"}, "Body": {"hi"}}, 400, 21604},
		{"no body", endpoint, "AC1", "tok", url.Values{"To": {"+49151"}, "From": {"+1500"}}, 400, 21602},
		{"too long", endpoint, "AC1", "tok", url.Values{"To": {"+49151"}, "From": {"+1500"}, "Body": {strings.Repeat("x", 1601)}}, 400, 21617},
		{"unknown path", p.URL() + "/v1/messages", "AC1", "tok", url.Values{}, 404, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				SID    string `json:"sid"`
				Status any    `json:"status"`
				Code   int    `json:"code"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || body.Code != tt.wantCode {
				t.Errorf("got %d code %d, want %d code %d", resp.StatusCode, body.Code, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus == 201 && (body.Status != "queued" || !strings.HasPrefix(body.SID, "SM")) {
				t.Errorf("created body = %+v", body)
			}
		})
	}
	if msgs := p.Messages(); len(msgs) != 1 || msgs[0].Body != "hi" || msgs[0].To != "+4915112345678" {
		t.Errorf("messages = %+v", msgs)
	}
}
