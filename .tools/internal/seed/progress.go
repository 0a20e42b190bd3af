package seed

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws "[#####-----] 120/300 blogs  40%  85/s". On a terminal the
// bar is redrawn in place at most ten times a second; elsewhere (a log
// file, CI) a line is printed at each tenth of the way so the output stays
// short.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	total    int
	count    int
	start    time.Time
	lastDraw time.Time
	lastTent int
}

const barWidth = 30

func newProgress(w io.Writer, terminal bool, total int) *progress {
	p := &progress{w: w, terminal: terminal, total: total, start: time.Now()}
	if w != nil {
		p.draw()
	}
	return p
}

func (p *progress) add(n int) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count += n
	if p.terminal {
		if time.Since(p.lastDraw) >= 100*time.Millisecond || p.count == p.total {
			p.drawLocked()
		}
		return
	}
	if tenth := p.count * 10 / p.total; tenth > p.lastTent {
		p.lastTent = tenth
		p.drawLocked()
	}
}

// done ends the bar's line on a terminal.
func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		p.drawLocked()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked()
}

func (p *progress) drawLocked() {
	p.lastDraw = time.Now()
	line := renderBar(p.count, p.total, time.Since(p.start))
	if p.terminal {
		fmt.Fprint(p.w, "\r"+line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// renderBar is one state of the bar.
func renderBar(done, total int, elapsed time.Duration) string {
	filled := done * barWidth / total
	rate := ""
	if s := elapsed.Seconds(); s > 0 && done > 0 {
		rate = fmt.Sprintf("  %.0f/s", float64(done)/s)
	}
	return fmt.Sprintf("seeding [%s%s] %d/%d blogs %3d%%%s",
		strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), done, total, done*100/total, rate)
}
